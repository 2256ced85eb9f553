"""Quality of the bundled demo CLIP on held-out generated scenes, on both backends, and under quantization.

- text -> image precision@10 for every colour+shape query ("a red circle") over a gallery of 1000
  multi-shape scenes (the share of the top ten that really hold a shape of that colour);
- zero-shot colour x shape classification top-1 over 560 single-shape scenes (56 prompts);
- cosine between the fp32 MLX embeddings and those of 8-bit and 4-bit conversions, on held-out
  images and captions (the minimum over all rows is reported).

    python bench/demo_quality.py                     # mlx and torch, render size 96
    python bench/demo_quality.py --backends mlx --render-size 160 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.backends import open_embedder  # noqa: E402
from app.core.paths import demo_model_dir  # noqa: E402
from training import quality  # noqa: E402


def quantized_cosines(model: Path, bits_list: tuple[int, ...] = (8, 4)) -> dict[str, float]:
    """Min cosine of each quantized conversion's embeddings against the fp32 MLX ones (images, texts)."""
    from converters.convert import convert

    images, texts = quality.real_inputs()
    ref = open_embedder(model, "mlx")
    ref_i, ref_t = ref.embed_images(images), ref.embed_texts(texts)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for bits in bits_list:
            dst = Path(tmp) / f"q{bits}"
            convert(model, dst, quantize=bits)
            q = open_embedder(dst, "mlx")
            out[f"q{bits}_image_min_cos"] = float(np.min(np.sum(ref_i * q.embed_images(images), axis=1)))
            out[f"q{bits}_text_min_cos"] = float(np.min(np.sum(ref_t * q.embed_texts(texts), axis=1)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=demo_model_dir())
    p.add_argument("--backends", default="mlx,torch")
    p.add_argument("--render-size", type=int, default=96)
    p.add_argument("--no-quant", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    report: dict = {"model": str(a.model), "render_size": a.render_size}
    for backend in a.backends.split(","):
        t0 = time.perf_counter()
        q = quality.measure(open_embedder(a.model, backend), a.render_size)
        report[backend] = {
            "precision_at_10": round(q.precision_at_10, 4),
            "zero_shot_top1": round(q.zero_shot_top1, 4),
            "n_queries": q.n_queries,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    if not a.no_quant:
        report["quantization"] = {k: round(v, 5) for k, v in quantized_cosines(a.model).items()}
    if a.json:
        print(json.dumps(report, indent=1))
    else:
        for key, value in report.items():
            print(f"{key:>14}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
