"""Cluster ingest benchmark: the local indexer vs `--engine ray` on this machine, and a projection.

    flock /tmp/fovea-bench.lock python bench/cluster_ingest.py [--quick] [--n 400] [--size 1024]
        [--model DIR] [--backend mlx] [--gpu-worker-img-s 1500]

Both runs index the same generated JPEGs into a fresh database with the same model and backend;
the Ray run uses a private local Ray with this machine's CPUs (its start-up is timed apart). It
prints images/s end to end, the Ray run's marginal rate (the extra photos over the extra time
against a run of SMALL photos: pipeline start-up and model loading excluded; Ray Data returns
results in bursts, so a first-to-last-commit rate would mislead), the overhead ratio local/Ray,
and the driver's commit ceiling (vectors written per second in the indexer's batched transactions),
which bounds any cluster. The projection
for N GPU workers is on paper: min(N x per-worker rate, commit ceiling), with the per-worker rate
measured here (CPU) or given (--gpu-worker-img-s, a figure you measured on one GPU worker).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx_models  # noqa: E402,F401  (prepares the MLX runtime before anything imports mlx.core)

from app.core import indexer  # noqa: E402
from app.core.backends import open_embedder  # noqa: E402
from app.core.paths import demo_model_dir  # noqa: E402
from app.core.store import Store  # noqa: E402

SMALL = 16  # photos in the run that measures the Ray pipeline's fixed start-up cost


def make_photos(folder: Path, n: int, size: int) -> None:
    """n JPEGs of size x 3/4 size (cached between runs)."""
    from tests.builders.images import photo, save_jpeg

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = folder / f"p{size}_{i:05d}.jpg"
        if not p.exists():
            save_jpeg(p, photo(size, size * 3 // 4, seed=i), quality=85)


def run_index(db: Path, emb, folder: Path, engine=None) -> tuple[float, int]:
    """(wall seconds, images embedded) for a fresh database."""
    db.unlink(missing_ok=True)
    store = Store(db)
    t0 = time.perf_counter()
    from tests.builders.jobs import run_to_end

    done = run_to_end(indexer.index(store, emb, [folder], engine=engine)).embedded
    wall = time.perf_counter() - t0
    store.close()
    return wall, done


def commit_ceiling(dim: int, n: int = 4096, batch: int = 32) -> float:
    """Vectors/s the driver stores alone: `commit_batch` of random normalised vectors, fresh database."""
    from app.core.indexer import IndexSummary, _Decoded, _Item

    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "c.sqlite")
        root = Path(d) / "r"
        with store.transaction() as conn:
            conn.execute("INSERT INTO roots (path, added_at) VALUES (?, 0)", (str(root),))
            rid = conn.execute("SELECT id FROM roots").fetchone()[0]
            conn.executemany(
                "INSERT INTO images (root_id, path, size, mtime_ns, status) VALUES (?, ?, 0, 0, 'pending')",
                [(rid, str(root / f"{i}.jpg")) for i in range(n)],
            )
        items = [_Item(int(i), Path(p)) for i, p in store.conn.execute("SELECT id, path FROM images")]
        rng = np.random.default_rng(0)
        vecs = rng.standard_normal((n, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        meta = _Decoded(np.zeros(1, np.float32), 10, 10, None, None)
        summary = IndexSummary()
        t = time.perf_counter()
        for k in range(0, n, batch):
            indexer.commit_batch(
                store, "bench", [(it, meta) for it in items[k : k + batch]], vecs[k : k + batch], [], summary
            )
        rate = n / (time.perf_counter() - t)
        store.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="150 photos of 640 px, one repetition")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--size", type=int, default=1024, help="photo width in pixels")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--model", default=str(demo_model_dir()))
    ap.add_argument("--backend", default="mlx")
    ap.add_argument(
        "--gpu-worker-img-s", type=float, help="a measured single-GPU-worker rate, for the projection"
    )
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "fovea-bench-cluster"))
    args = ap.parse_args()
    if args.quick:
        args.n, args.size, args.reps = 150, 640, 1
    import ray

    from app.core.cluster import RAY_VERSION, ClusterOptions, RayEngine

    cpus = os.cpu_count() or 1
    print(f"load average at start: {os.getloadavg()} on {cpus} CPUs (the machine may be shared)")
    print(
        f"ray {ray.__version__} (pinned {RAY_VERSION}); model {Path(args.model).name}, backend {args.backend}"
    )
    folder = Path(args.cache) / f"photos-{args.size}-{args.n}"
    make_photos(folder, args.n, args.size)
    small = Path(args.cache) / f"photos-{args.size}-{SMALL}"
    make_photos(small, SMALL, args.size)
    emb = open_embedder(Path(args.model), args.backend)
    t = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    print(
        f"ray.init (local, {cpus} CPUs): {time.perf_counter() - t:.1f} s (once per driver, not counted below)"
    )
    engine = RayEngine(ClusterOptions(backend=args.backend))
    local, remote, marginal, startup = [], [], [], []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.reps):
            wall, n = run_index(Path(d) / "local.sqlite", emb, folder)
            local.append(n / wall)
            wall, n = run_index(Path(d) / "ray.sqlite", emb, folder, engine)
            remote.append(n / wall)
            wall_small, n_small = run_index(Path(d) / "ray-small.sqlite", emb, small, engine)
            marginal.append((n - n_small) / max(wall - wall_small, 1e-9))
            startup.append(wall_small)
    lo, rw, rs = statistics.median(local), statistics.median(remote), statistics.median(marginal)
    ceiling = commit_ceiling(emb.dim)
    print(f"{args.n} photos {args.size}x{args.size * 3 // 4}, median of {args.reps}:")
    print(f"  local indexer          {lo:8.1f} img/s")
    print(f"  ray, end to end        {rw:8.1f} img/s  (overhead ratio local/ray {lo / rw:.2f}x)")
    print(
        f"  ray, marginal          {rs:8.1f} img/s  (start-up excluded; local/ray {lo / max(rs, 1e-9):.2f}x)"
    )
    print(
        f"  ray, {SMALL} photos        {statistics.median(startup):8.1f} s      (about the start-up of one run)"
    )
    print(f"  driver commit ceiling  {ceiling:8.0f} vectors/s (dim {emb.dim}, batches of 32)")
    per_worker = {"this machine as one CPU worker (measured, marginal)": rs}
    if args.gpu_worker_img_s:
        per_worker["one GPU worker (given)"] = args.gpu_worker_img_s
    print("projection on paper: min(N x per-worker, commit ceiling); decode CPUs per worker must keep up")
    for name, rate in per_worker.items():
        row = "  ".join(f"N={k}: {min(k * rate, ceiling):7.0f}" for k in (1, 2, 4, 8, 16))
        print(f"  {name}: {row} img/s")
    print(f"load average at end: {os.getloadavg()}")
    ray.shutdown()


if __name__ == "__main__":
    main()
