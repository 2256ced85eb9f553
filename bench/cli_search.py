"""CLI start-up benchmark: wall time of a whole `fovea search` process on a ~3,000-photo library.

    python bench/cli_search.py [--n 3000] [--runs 5]

The library is a real store whose images carry random unit vectors in the bundled demo model's space
(the search path does not look at pixels). Each run is a fresh `python -m app` process, so the time
covers interpreter start, imports, backend choice, model load, the text embedding, the index and the
printout. `--backend auto` runs beside `--backend mlx` (the baseline that never considers torch);
with torch installed and no NVIDIA driver, the two should cost the same.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.backends import open_embedder  # noqa: E402
from app.core.paths import demo_model_dir  # noqa: E402
from app.core.store import Store  # noqa: E402


def make_library(db: Path, n: int) -> None:
    """n 'ok' images under one root, each with a random unit embedding for the demo model."""
    emb = open_embedder(demo_model_dir(), "mlx")
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, emb.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = Store(db)
    with store.transaction() as conn:
        root = store.add_root("/photos", time.time())
        conn.executemany(
            "INSERT INTO images (id, root_id, path, size, status, width, height) VALUES (?, ?, ?, 1, 'ok', 64, 64)",
            [(i + 1, root, f"/photos/img_{i:05d}.jpg") for i in range(n)],
        )
        store.put_embeddings(emb.model_id, list(range(1, n + 1)), vecs)
    store.close()


def wall(args: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "app", *args], check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    try:
        import importlib.metadata

        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, torch {torch_version}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "lib.sqlite"
        make_library(db, args.n)
        env = {**os.environ, "FOVEA_DATA_DIR": str(Path(tmp) / "data"), "PYTHONPATH": str(ROOT)}
        # An installed app runs from cached bytecode (pip and PyInstaller compile it): let the warm-up
        # run write it, or every run would recompile ~100 modules (~0.2 s) that no user ever pays for.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        base = ["--db", str(db)]
        query = ["search", "a red circle", "-k", "10"]
        wall([*base, "--backend", "mlx", *query], env)  # warm the page cache, bytecode and first-run files
        times: dict[str, list[float]] = {"auto": [], "mlx": []}
        for _ in range(args.runs):
            for backend in times:
                times[backend].append(wall([*base, "--backend", backend, *query], env))
    med = {b: statistics.median(t) for b, t in times.items()}
    for b, t in times.items():
        print(
            f"  fovea search, --backend {b:<4}  {args.n} photos  wall median {med[b]:.2f} s  (runs {len(t)})"
        )
    print(f"  auto / mlx {med['auto'] / med['mlx']:.2f}x  (target: auto <= 0.5 s)")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
