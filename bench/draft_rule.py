"""How far the decode workers' model input is from the reference, for the JPEG draft rule (2x vs 1x).

    python bench/draft_rule.py [--model FOLDER]

The reference is transformers' CLIPImageProcessorPil on the full-resolution decode. The workers decode
JPEGs reduced by DCT scaling to at least `rule` x the model's input side (the indexer uses 2x), then run
our processor with the photo's full size (mlx_models.common.reduced). Photos: scikit-image's and
matplotlib's real samples at their own size, saved as JPEG q90, plus 4000x3000 composites with real
pixel-level detail (native-resolution photos tiled; grass/gravel/brick textures tiled) and the ingest
bench's kind of photo (a smooth upscale). Printed per photo and on average: the mean, 99th percentile and
max absolute pixel error in 8-bit levels, and 1 - cosine between the image embeddings (a random-weight
ViT-B/32 by default: a trained model may weigh the error differently), plus the workers' CPU per photo.
No timing here depends on the machine's load in a way that changes the verdict; the load is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def photos() -> dict:
    from PIL import Image

    from tests.builders.real_photos import sample_files

    out, natives = {}, {}
    for p in sample_files():
        im = Image.open(p)
        if im.mode in ("RGB", "L") and min(im.size) >= 224:
            natives[p.stem] = im.convert("RGB")
            out[f"{p.stem} {im.width}x{im.height}"] = natives[p.stem]
    mosaic = Image.new("RGB", (4000, 3000))
    x = y = row = k = 0
    names = sorted(natives)
    while y < 3000:  # native-resolution photos side by side: real detail at camera size, no resampling
        im = natives[names[k % len(names)]]
        mosaic.paste(im, (x, y))
        row, x, k = max(row, im.height), x + im.width, k + 1
        if x >= 4000:
            x, y, row = 0, y + row, 0
    out["mosaic of real photos 4000x3000"] = mosaic
    tex = Image.new("RGB", (4000, 3000))
    tiles = [natives[n] for n in ("grass", "gravel", "brick") if n in natives]
    for i, ty in enumerate(range(0, 3000, 512)):
        for j, tx in enumerate(range(0, 4000, 512)):
            tex.paste(tiles[(i + j) % len(tiles)], (tx, ty))
    out["textures 4000x3000"] = tex
    out["coffee upscaled 3000x2000 (as the ingest bench)"] = natives["coffee"].resize((3000, 2000), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", type=Path, default=Path(tempfile.gettempdir()) / "fovea-bench-ingest" / "clip-vit-b32-mlx"
    )
    args = ap.parse_args(argv)
    import mlx_models  # noqa: F401  (prepares the MLX runtime before anything imports mlx.core)

    from PIL import Image
    from transformers import CLIPImageProcessorPil

    from app.core.backends import open_embedder
    from app.core.decode import open_image

    if not (args.model / "config.json").exists():
        from bench.ingest import make_models

        make_models(args.model.parent)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; model {args.model.name}")
    emb = open_embedder(args.model, "mlx")
    ref_proc = CLIPImageProcessorPil.from_pretrained(args.model)
    ours, side = emb.portable_preprocess, emb.image_size
    levels = float(np.mean(ours.image_std)) * 255  # normalised units -> 8-bit levels
    print(
        f"{'photo':48s} rule {'decoded':>10s} {'mean':>6s} {'p99':>5s} {'max':>5s} {'1-cos':>9s} {'cpu ms':>7s}"
    )
    totals: dict[int, list[tuple[float, float, float]]] = {2: [], 1: []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, im in photos().items():
            path = Path(tmp) / "photo.jpg"
            im.save(path, quality=90)
            with Image.open(path) as f:
                ref = ref_proc(images=[f.convert("RGB")], return_tensors="np")["pixel_values"][0]
            ref = ref.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
            ref_vec = emb.embed_pixels(ref[None])[0]
            for rule in (2, 1):
                t = time.process_time()
                d = open_image(path, min_side=rule * side)
                x = ours(d.image, (d.width, d.height))
                cpu = (time.process_time() - t) * 1000
                err = np.abs(x - ref) * levels
                cos_d = 1 - float(emb.embed_pixels(x[None])[0] @ ref_vec)
                totals[rule].append((float(err.mean()), cos_d, cpu))
                print(
                    f"{name:48s} {rule}x   {d.image.width:>4d}x{d.image.height:<5d} {err.mean():6.3f} "
                    f"{np.percentile(err, 99):5.1f} {err.max():5.0f} {cos_d:9.2e} {cpu:7.1f}"
                )
    for rule, rows in totals.items():
        a = np.array(rows)
        print(
            f"mean over {len(a)} photos, {rule}x rule: pixel error {a[:, 0].mean():.3f} levels, "
            f"1-cos {a[:, 1].mean():.2e} (worst {a[:, 1].max():.2e}), cpu {a[:, 2].mean():.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
