"""Tagging benchmark: throughput from stored embeddings, and the demo model's precision/coverage curve.

    python -m bench.tagging [--images 100000] [--labels 1000] [--dim 512] [--skip-store] [--skip-curve]

Throughput is measured twice: the decision rule alone on int8 rows held in memory (what re-tagging
costs once the rows are read), and the whole `tag_library` job on a SQLite store (read, decide, write).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import mlx_models  # noqa: F401  (prepares the BLAS/MLX runtime before numpy work)

import numpy as np

from app.core.backends import l2_normalize
from app.core.paths import demo_model_dir, resources_dir
from app.core.store import Store
from app.core.tag_vocab import LabelMatrix
from app.core.tagging import AUTO, DEFAULT_COSINE_FRACTION, Scorer, Thresholds, library_cosine, tag_library
from app.core.vectors import quantize_int8

TARGET_IMAGES_PER_S = 20_000


class _SyntheticModel:
    model_id = "bench-synthetic"
    model_type = "clip"
    logit_scale = 100.0
    logit_bias = None


def synthetic_space(n_images: int, n_labels: int, dim: int, seed: int = 0) -> tuple[LabelMatrix, np.ndarray]:
    """Random labels and images that sit near one label each (so top-k and softmax see realistic peaks)."""
    rng = np.random.default_rng(seed)
    labels = l2_normalize(rng.standard_normal((n_labels + 1, dim)))
    owner = rng.integers(0, n_labels, n_images)
    images = np.empty((n_images, dim), np.float32)
    for s in range(0, n_images, 10_000):  # in blocks: a (100k, 512) float64 temporary would be 400 MB
        sl = slice(s, s + 10_000)
        images[sl] = l2_normalize(
            0.3 * labels[owner[sl]] + rng.standard_normal((len(owner[sl]), dim)) / np.sqrt(dim)
        )
    lm = LabelMatrix(tuple(f"label {i}" for i in range(n_labels)), ("g",) * n_labels, labels[:-1], labels[-1])
    return lm, images


def bench_decide(lm: LabelMatrix, images: np.ndarray, batch: int) -> float:
    q, scale = quantize_int8(images)
    scorer, th = Scorer(lm, "clip", 100.0, None), Thresholds()
    t0 = time.perf_counter()
    for s in range(0, len(q), batch):
        scorer.decide(q[s : s + batch].astype(np.float32), th, row_scale=scale[s : s + batch])
    return len(q) / (time.perf_counter() - t0)


def bench_store(lm: LabelMatrix, images: np.ndarray, batch: int) -> tuple[float, float]:
    """(images/s of the whole job, seconds spent reading rows) on a temporary on-disk store."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.sqlite")
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO images (id, path, status) VALUES (?, ?, 'ok')",
                [(i + 1, f"/bench/{i:06d}.jpg") for i in range(len(images))],
            )
            store.put_embeddings(_SyntheticModel.model_id, list(range(1, len(images) + 1)), images)
        t0 = time.perf_counter()
        store.embedding_rows(_SyntheticModel.model_id)
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in tag_library(store, _SyntheticModel(), lm, batch=batch):
            pass
        rate = len(images) / (time.perf_counter() - t0)
        store.close()
    return rate, read_s


def precision_coverage_curve(n_images: int = 560) -> list[tuple[float, float, float, float, int, int]]:
    """(min_score, min_margin, precision, coverage, n_auto, blank/noise images auto-tagged) of the demo
    model on held-out single-shape scenes."""
    from app.core.backends import open_embedder
    from app.core.scenes import render
    from app.core.tag_vocab import label_embeddings, load_vocabulary
    from training.quality import blank_and_noise_images, heldout_single

    emb = open_embedder(demo_model_dir(), "mlx")
    vocab = load_vocabulary(resources_dir() / "tags" / "demo.txt")
    lm = label_embeddings(emb, vocab, cache_dir=Path(tempfile.mkdtemp()))
    scenes = heldout_single(n_images)
    x = np.concatenate(
        [emb.embed_images([render(s) for s in scenes[i : i + 64]]) for i in range(0, len(scenes), 64)]
    )
    truth = np.array([lm.labels.index(f"{s.shapes[0].colour} {s.shapes[0].kind}") for s in scenes])
    blank = emb.embed_images(blank_and_noise_images())  # the set tests/test_tagging.py uses
    scorer = Scorer.for_embedder(emb, lm)
    floor = DEFAULT_COSINE_FRACTION * library_cosine(scorer, x)  # as tag_library sets it for this library
    rows = []
    for ms in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        for mm in (0.0, 0.1, 0.2):
            th = Thresholds(min_score=ms, min_margin=mm, min_cosine=floor)
            d = scorer.decide(x, th)
            applied = d.state[:, 0] == AUTO
            correct = applied & (d.label[:, 0] == truth)
            prec = correct.sum() / max(1, applied.sum())
            n_blank = int(
                (scorer.decide(blank, Thresholds(min_score=ms, min_margin=mm)).state == AUTO).any(1).sum()
            )
            rows.append((ms, mm, float(prec), float(correct.sum() / len(truth)), int(applied.sum()), n_blank))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--labels", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--skip-store", action="store_true", help="only time the decision rule in memory")
    ap.add_argument(
        "--skip-curve", action="store_true", help="skip the demo model's precision/coverage table"
    )
    a = ap.parse_args()

    lm, images = synthetic_space(a.images, a.labels, a.dim)
    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs, 1-min load average {load:.1f} (a shared machine inflates every time below)"
    )
    rate = bench_decide(lm, images, a.batch)
    verdict = "meets" if rate >= TARGET_IMAGES_PER_S else "MISSES"
    print(
        f"decision rule, {a.images} images x {a.labels} labels, d={a.dim}: {rate:,.0f} images/s ({verdict} {TARGET_IMAGES_PER_S:,})"
    )
    if not a.skip_store:
        job_rate, read_s = bench_store(lm, images, a.batch)
        print(
            f"tag_library on a SQLite store (read + decide + write): {job_rate:,.0f} images/s (reading rows {read_s:.2f} s)"
        )
    if a.skip_curve:
        return
    if not (demo_model_dir() / "config.json").is_file():
        print(f"precision/coverage curve skipped: no demo model at {demo_model_dir()}")
        return
    print("\ndemo model, held-out single-shape scenes, demo vocabulary (56 colour x shape labels)")
    print(
        f"{'min_score':>9} {'min_margin':>10} {'precision':>9} {'coverage':>8} {'auto':>5} {'blank/noise auto':>16}"
    )
    for ms, mm, p, c, n, nb in precision_coverage_curve():
        print(f"{ms:9.2f} {mm:10.2f} {p:9.3f} {c:8.3f} {n:5d} {nb:>13d}/12")


if __name__ == "__main__":
    main()
