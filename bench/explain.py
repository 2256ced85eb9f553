"""Seconds per image of `fovea explain` (occlusion maps) and how well the maps point, on this CPU.

    python bench/explain.py [--images N] [--scenes N] [--skip-b32] [--model MLX_FOLDER] [--quick]

For the bundled demo model (64x64 input, 8x8 grid) and a ViT-B/32-shaped CLIP with random weights
(224x224, 7x7 grid; built offline and converted with our converter), on the mlx backend (what the
library uses on this CPU) and the torch backend, times `app.core.explain.explain` with every 3x3
window (stride 1) and with a coarse pass (stride 2) refined around its peak, against one plain
`embed_pixels` of the same image, and as many unoccluded copies as the map embeds in the batches
explain chose (so a copy's cost is separated from the number of copies). On the demo model it also
plays the pointing game (training/pointing.py) for both plans. --quick: 1 image, 10 scenes, the
default plan (coarse+refine) only.
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

PLANS = {"full": {"coarse_stride": 1}, "coarse+refine": {"coarse_stride": 2}}  # the second is the default


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def time_explain(emb, images, query: np.ndarray, plan: dict, progress: bool) -> tuple[float, int, int]:
    """(median seconds per image, occluded copies per image, the batch size explain chose); progress
    on stderr as the core yields it."""
    times, copies, batch = [], 0, 1
    for i, img in enumerate(images):
        t = time.perf_counter()
        gen = explain(emb, img, query, **plan)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                copies, batch = stop.value.windows, stop.value.batch
                break
            if progress:
                print(f"\r  image {i + 1}/{len(images)}: {p.done}/{p.total} copies", end="", file=sys.stderr)
        times.append(time.perf_counter() - t)
    if progress:
        print(file=sys.stderr)
    return float(np.median(times)), copies, batch


def baseline(emb, images) -> float:
    """Median seconds of one plain embedding (preprocess + embed_pixels) of each image."""
    times = []
    for img in images:
        t = time.perf_counter()
        emb.embed_pixels(emb.preprocess(img)[None])
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def copies_time(emb, image, n: int, size: int) -> float:
    """Seconds to embed `n` unoccluded copies of one image in batches of `size`: what the map costs
    without the occlusion, so per-copy cost and number of copies are told apart."""
    pixels = emb.preprocess(image)
    t = time.perf_counter()
    for start in range(0, n, size):
        emb.embed_pixels(np.repeat(pixels[None], min(size, n - start), axis=0))
    return time.perf_counter() - t


def report(name: str, emb, images, query: np.ndarray, progress: bool, plans: dict) -> None:
    emb.embed_pixels(emb.preprocess(images[0])[None])  # warm-up: lazy init, caches
    one = baseline(emb, images)
    print(f"{name}: one plain embedding {one:.3f} s ({_load()})")
    for plan_name, plan in plans.items():
        s, copies, batch = time_explain(emb, images, query, plan, progress)
        plain = copies_time(emb, images[0], copies + 1, batch)
        print(
            f"  {plan_name:<14} {s:6.2f} s/image  {copies:3d} copies  = {s / one:5.1f} plain embeddings; "
            f"batches of {batch}; {copies + 1} unoccluded copies in those batches {plain:.2f} s"
        )


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
    p.add_argument("--backends", default="mlx,torch", help="comma-separated backends to time")
    p.add_argument("--quick", action="store_true", help="1 image, 10 scenes, the default plan only")
    args = p.parse_args()
    plans = {"coarse+refine": PLANS["coarse+refine"]} if args.quick else PLANS
    if args.quick:
        args.images, args.scenes = 1, 10
    backends = args.backends.split(",")
    print(f"bench/explain.py: {_load()}; the machine is shared by several engineers right now")

    items = pointing_items(19, args.scenes)
    photos = [scenes.render(it.scene, 256) for it in items[: args.images]]
    for backend in backends:
        emb = open_embedder(demo_model_dir(), backend)
        q = emb.embed_texts([items[0].present_prompt])[0]
        report(f"demo model ({backend}, 64x64, 8x8 grid)", emb, photos, q, False, plans)
    demo = open_embedder(demo_model_dir(), "mlx")
    for plan_name, plan in plans.items():
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
        print(f"ViT-B/32 random weights ready in {time.perf_counter() - t:.0f} s")
        photos = [img.resize((640, 480)) for img in photos]
        for backend in backends:
            b32 = open_embedder(folder, backend)
            rng = np.random.default_rng(0)
            query = rng.standard_normal(b32.dim).astype(np.float32)
            query /= np.linalg.norm(query)  # random weights know no words: a random unit query costs the same
            report(f"ViT-B/32 ({backend}, 224x224, 7x7 grid)", b32, photos, query, True, plans)
            del b32
    print(f"done; {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
