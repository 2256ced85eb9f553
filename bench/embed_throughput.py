"""Image-embedding throughput of the backends on the ViT-B/32 architecture (random weights).

    python bench/embed_throughput.py [--quick] [--repeats N] [--batches 1,8,32] [--model MLX_FOLDER]

Builds an openai/clip-vit-base-patch32-shaped checkpoint with random weights (offline), converts it,
then times `embed_pixels` (the model only: no decoding or preprocessing) for
  mlx          our MLX port with the system OpenBLAS preloaded (mlx_models.runtime),
  mlx-noblas   the same with FOVEA_NO_OPENBLAS=1, i.e. the BLAS bundled in the mlx[cpu] wheel,
  torch        transformers' CLIPModel on the same weights (CUDA if present, else CPU).
Each variant runs in its own process (the BLAS preload happens at import time) and reports the
median images/s over the repeats, after one warm-up call (mlx-noblas: batch 1, one repeat).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (variant, backend, extra environment)
VARIANTS = (("mlx", "mlx", {}), ("mlx-noblas", "mlx", {"FOVEA_NO_OPENBLAS": "1"}), ("torch", "torch", {}))
NOBLAS_BATCHES = (1,)  # the bundled reference BLAS is ~25x slower: one image takes ~15 s on 2 cores


def worker(model: Path, backend: str, batches: list[int], repeats: int) -> dict:
    """Runs inside the child process: time embed_pixels per batch size; returns JSON-able results."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from app.core.backends import open_embedder

    emb = open_embedder(model, backend)
    size = emb.preprocess(_probe_image()).shape  # (H, W, 3) the model takes
    rng = np.random.default_rng(0)
    emb.embed_pixels(rng.standard_normal((1, *size), dtype=np.float32))  # warm-up: lazy init, caches
    out: dict = {"device": getattr(emb, "device", "?"), "images_per_s": {}}
    if backend == "mlx":
        import mlx_models

        out["blas"] = mlx_models.runtime.BLAS.reason
    for b in batches:
        pixels = rng.standard_normal((b, *size), dtype=np.float32)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            emb.embed_pixels(pixels)
            times.append(time.perf_counter() - t)
        out["images_per_s"][str(b)] = b / float(np.median(times))
    return out


def _probe_image():
    from PIL import Image

    return Image.new("RGB", (224, 224), (128, 64, 32))


def build_model(workdir: Path) -> Path:
    """A converted float32 MLX folder of the ViT-B/32 architecture with random weights."""
    sys.path.insert(0, str(ROOT))
    from converters.convert import convert
    from tests.builders.clip import make_clip_checkpoint

    src = make_clip_checkpoint(workdir / "hf-vit-b32", preset="vit-b32")
    return convert(src, workdir / "mlx-vit-b32").dst


def run_variant(model: Path, name: str, backend: str, env: dict, batches: list[int], repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", backend, "--model", str(model), "--repeats", str(repeats)]
    cmd += ["--batches", ",".join(map(str, batches))]
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": f"{name} failed: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_table(results: dict[str, dict], batches: list[int]) -> None:
    print(
        f"{'variant':<12} {'device':<7} " + " ".join(f"{'b=' + str(b):>9}" for b in batches) + "   (images/s)"
    )
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<12} {r['error']}")
            continue
        cells = [r["images_per_s"].get(str(b)) for b in batches]
        print(f"{name:<12} {r['device']:<7} " + " ".join(f"{c:9.2f}" if c else f"{'-':>9}" for c in cells))
    base = results.get("torch", {}).get("images_per_s", {})
    for name in ("mlx", "mlx-noblas"):
        ips = results.get(name, {}).get("images_per_s", {})
        ratios = [
            f"{ips[str(b)] / base[str(b)]:9.2f}" if str(b) in ips and str(b) in base else f"{'-':>9}"
            for b in batches
        ]
        print(f"{name + '/torch':<20} " + " ".join(ratios))
    for name, r in results.items():
        if "blas" in r:
            print(f"{name}: {r['blas']}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="batches 1 and 8, one repeat (a smoke run)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batches", default="1,8,32")
    p.add_argument(
        "--model", type=Path, help="an existing converted MLX folder to time instead of building one"
    )
    p.add_argument("--worker", choices=("mlx", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    repeats = args.repeats
    if args.quick:
        batches, repeats = [b for b in batches if b <= 8], 1
    if args.worker:
        print(json.dumps(worker(args.model, args.worker, batches, repeats)))
        return 0

    with tempfile.TemporaryDirectory(prefix="fovea-bench-") as tmp:
        t = time.perf_counter()
        model = args.model or build_model(Path(tmp))
        print(
            f"model: {model.name} (ViT-B/32 architecture, random weights), ready in {time.perf_counter() - t:.0f} s"
        )
        results = {}
        for name, backend, env in VARIANTS:
            bs = [b for b in batches if b in NOBLAS_BATCHES] if env else batches
            if not bs:  # the worker needs at least one batch size
                results[name] = {"error": f"{name} skipped: it runs only batch sizes {NOBLAS_BATCHES}"}
                continue
            rep = 1 if env else repeats
            t = time.perf_counter()
            results[name] = run_variant(model, name, backend, env, bs, rep)
            print(f"  {name}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
        print(
            f"median images/s of embed_pixels at 224x224, float32, {repeats} repeats ({os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f})"
        )
        print_table(results, batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
