"""Seconds per image of `fovea explain` (occlusion maps) and how well the maps point, on this CPU.

    python bench/explain.py [--images N] [--scenes N] [--skip-b32] [--model MLX_FOLDER]

For the bundled demo model (64x64 input, 8x8 grid) and a ViT-B/32-shaped CLIP with random weights
(224x224, 7x7 grid; built offline and converted with our converter), times `app.core.explain.explain`
with every 3x3 window (stride 1) and with a coarse pass (stride 2) refined around its peak, and one
plain `embed_pixels` of the same image as the in-process baseline (the map costs about that many
embeddings). On the demo model it also plays the pointing game (training/pointing.py) for both plans.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.backends import open_embedder  # noqa: E402
from app.core.explain import explain  # noqa: E402
from app.core.paths import demo_model_dir  # noqa: E402
from training import scenes  # noqa: E402
from training.pointing import pointing_game, pointing_items  # noqa: E402

PLANS = {"full": {"coarse_stride": 1}, "coarse+refine": {"coarse_stride": 2}}


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def time_explain(emb, images, query: np.ndarray, plan: dict, progress: bool) -> tuple[float, int]:
    """(median seconds per image, occluded copies per image); progress on stderr as the core yields it."""
    times, copies = [], 0
    for i, img in enumerate(images):
        t = time.perf_counter()
        gen = explain(emb, img, query, **plan)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                copies = stop.value.windows
                break
            if progress:
                print(f"\r  image {i + 1}/{len(images)}: {p.done}/{p.total} copies", end="", file=sys.stderr)
        times.append(time.perf_counter() - t)
    if progress:
        print(file=sys.stderr)
    return float(np.median(times)), copies


def baseline(emb, images) -> float:
    """Median seconds of one plain embedding (preprocess + embed_pixels) of each image."""
    times = []
    for img in images:
        t = time.perf_counter()
        emb.embed_pixels(emb.preprocess(img)[None])
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def report(name: str, emb, images, query: np.ndarray, progress: bool) -> None:
    emb.embed_pixels(emb.preprocess(images[0])[None])  # warm-up: lazy init, caches
    one = baseline(emb, images)
    print(f"{name}: one plain embedding {one:.3f} s ({_load()})")
    for plan_name, plan in PLANS.items():
        s, copies = time_explain(emb, images, query, plan, progress)
        print(f"  {plan_name:<14} {s:6.2f} s/image  {copies:3d} copies  = {s / one:5.1f} plain embeddings")


def build_b32(workdir: Path) -> Path:
    from converters.convert import convert
    from tests.builders.clip import make_clip_checkpoint

    return convert(
        make_clip_checkpoint(workdir / "hf-vit-b32", preset="vit-b32"), workdir / "mlx-vit-b32"
    ).dst


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=3, help="photos timed per model (median reported)")
    p.add_argument("--scenes", type=int, default=40, help="scenes in the pointing game")
    p.add_argument("--skip-b32", action="store_true", help="only the demo model")
    p.add_argument("--model", type=Path, help="an existing converted ViT-B/32-shaped MLX folder")
    args = p.parse_args()
    print(f"bench/explain.py: {_load()}; the machine is shared by several engineers right now")

    demo = open_embedder(demo_model_dir(), "mlx")
    items = pointing_items(19, args.scenes)
    photos = [scenes.render(it.scene, 256) for it in items[: args.images]]
    report(
        "demo model (mlx, 64x64, 8x8 grid)",
        demo,
        photos,
        demo.embed_texts([items[0].present_prompt])[0],
        False,
    )
    for plan_name, plan in PLANS.items():
        t = time.perf_counter()
        score = pointing_game(demo, items, **plan)
        print(
            f"  pointing game {plan_name:<14} {score.hit_rate:.3f} of {score.n} scenes; "
            f"absent/present peak ratio {score.absent_ratio:.3f} ({time.perf_counter() - t:.0f} s)"
        )
    if args.skip_b32:
        return 0
    with tempfile.TemporaryDirectory(prefix="fovea-bench-") as tmp:
        t = time.perf_counter()
        folder = args.model or build_b32(Path(tmp))
        b32 = open_embedder(folder, "mlx")
        print(f"ViT-B/32 random weights ready in {time.perf_counter() - t:.0f} s")
        rng = np.random.default_rng(0)
        query = rng.standard_normal(b32.dim).astype(np.float32)
        query /= np.linalg.norm(query)  # random weights know no words: a random unit query costs the same
        photos = [img.resize((640, 480)) for img in photos]
        report("ViT-B/32 (mlx, 224x224, 7x7 grid)", b32, photos, query, True)
    print(f"done; {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
