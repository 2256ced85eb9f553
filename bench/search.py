"""Search benchmark: the VectorIndex + float16 rescoring pipeline against float32 numpy brute force (rclip).

Synthetic corpora: a low-dimensional Gaussian mixture mapped up with noise and normalised; queries are
mapped by a distorted map and pushed along a common offset (the modality gap of text vs image).
Per size: p50/p95 latency, recall@10 against exact float32, resident bytes. The rescoring vectors
are read per query from a real SQLite store (Store.f16_vectors), so that fetch is in the latency.
Then, if resources/models/fovea-demo-clip exists, the same on the demo model's image and text embeddings.

    python bench/search.py                     # N = 10k, 100k, 1M; d = 512 and 768
    python bench/search.py --sizes 10000,100000 --dims 512 --queries 50
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.store import Store  # noqa: E402
from app.core.vector_index import IndexConfig, VectorIndex  # noqa: E402
from app.core.vectors import quantize_int8  # noqa: E402

MODEL = "bench-model"


def structured(n: int, d: int, nq: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) unit corpus rows and (nq, d) shifted unit queries (see the module docstring)."""
    rng = np.random.default_rng(seed)
    latent, comps = 96, 512
    centers = rng.standard_normal((comps, latent)).astype(np.float32)
    up = (rng.standard_normal((latent, d)) / np.sqrt(latent)).astype(np.float32)
    up_q = up + (0.6 * rng.standard_normal((latent, d)) / np.sqrt(latent)).astype(np.float32)
    gap = rng.standard_normal(d).astype(np.float32)
    gap /= np.linalg.norm(gap)

    def draw(m: int, r: np.random.Generator, u: np.ndarray, shift: float) -> np.ndarray:
        z = centers[r.integers(0, comps, m)] + 0.8 * r.standard_normal((m, latent), np.float32)
        x = z @ u + 0.6 * r.standard_normal((m, d), np.float32)
        x = x / np.linalg.norm(x, axis=1, keepdims=True) + shift * gap
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    x = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        x[s : s + 100_000] = draw(min(100_000, n - s), np.random.default_rng([seed, s]), up, 0.0)
    return x, draw(nq, np.random.default_rng([seed, 10**9]), up_q, 1.2)


def exact_top10(x: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = np.concatenate([x[s : s + 200_000] @ queries.T for s in range(0, len(x), 200_000)])  # (n, nq)
    return np.argsort(-scores, axis=0)[:10].T  # (nq, 10) row numbers


def percentiles(times: list[float], cpu: list[float] | None = None) -> str:
    t = np.array(times) * 1e3
    out = f"p50 {np.percentile(t, 50):7.2f} ms  p95 {np.percentile(t, 95):7.2f} ms"
    if cpu:  # CPU seconds of this process per query: robust when other jobs share the cores
        out += f"  cpu p50 {np.median(cpu) * 1e3:7.2f} ms"
    return out


def fill_store(path: Path, x: np.ndarray) -> Store:
    """A real store holding the float16 vectors (ids = row + 1), written directly for speed."""
    store = Store(path)
    f16 = x.astype(np.float16)
    with store.transaction() as conn:
        for s in range(0, len(x), 50_000):
            conn.executemany(
                "INSERT INTO embeddings (image_id, model_id, vec_i8, scale, vec_f16) VALUES (?, ?, x'', 0, ?)",
                ((s + k + 1, MODEL, f16[s + k].tobytes()) for k in range(min(50_000, len(x) - s))),
            )
    return store


def bench_size(n: int, d: int, nq: int, pools: list[int], config: IndexConfig, tmp: Path) -> None:
    x, queries = structured(n, d, nq)
    truth = exact_top10(x, queries)
    print(f"\n== N={n:,} d={d}  ({nq} shifted queries; candidate pools rescored from SQLite float16)")

    times, cpu = [], []  # rclip: float32 matrix product over everything, then top 10
    for q in queries:
        t, c = time.perf_counter(), time.process_time()
        s = x @ q
        top = np.argpartition(-s, 10)[:10]
        top[np.argsort(-s[top])]
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    base_p50, base_cpu = float(np.median(times)), float(np.median(cpu))
    print(
        f"  float32 brute force    {percentiles(times, cpu)}  recall 1.000  memory {x.nbytes / 2**20:7.1f} MiB"
    )

    ids = np.arange(1, n + 1, dtype=np.int64)
    i8, scales = quantize_int8(x)
    t = time.perf_counter()
    index = VectorIndex(d, config)
    index.add(ids, i8, scales)
    build = time.perf_counter() - t
    del i8
    store = fill_store(tmp / f"bench-{n}-{d}.sqlite", x)

    for cfg_pool in pools:
        times, cpu, fetch, hits = [], [], [], 0
        for qi, q in enumerate(queries):
            t, c = time.perf_counter(), time.process_time()
            cand = index.search(q, cfg_pool)
            t_f = time.perf_counter()
            f16 = store.f16_vectors(MODEL, cand.ids.tolist())
            fetch.append(time.perf_counter() - t_f)
            exact = f16.astype(np.float32) @ q
            best = cand.ids[np.argsort(-exact)[:10]]
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            hits += len(set((best - 1).tolist()) & set(truth[qi].tolist()))
        p50, p50_cpu = float(np.median(times)), float(np.median(cpu))
        print(
            f"  IVF+rescore pool {cfg_pool:<4}  {percentiles(times, cpu)}  recall {hits / (10 * nq):.3f}  memory"
            f" {index.nbytes / 2**20:7.1f} MiB ({index.nbytes / x.nbytes:.2f}x f32)  speedup {base_p50 / p50:4.1f}x"
            f" (cpu {base_cpu / p50_cpu:4.1f}x)"
        )
        print(
            f"    lists {index.nlist}, build {build:.1f} s, of which SQLite float16 fetch p50 "
            f"{np.median(fetch) * 1e3:.2f} ms"
        )
    store.close()


def bench_demo_model(pool: int) -> None:
    from app.core.paths import demo_model_dir

    folder = demo_model_dir()
    if not (folder / "config.json").exists():
        print(f"\n== demo model: skipped ({folder} does not exist yet)")
        return
    import json

    from PIL import Image

    from app.core.backends import open_embedder
    from app.core.demo import write_demo_library

    emb = open_embedder(folder, "mlx")
    with tempfile.TemporaryDirectory() as lib:
        for _ in write_demo_library(Path(lib), n=300):
            pass
        files = sorted(Path(lib).glob("*.jpg"))
        imgs = np.concatenate(
            [
                emb.embed_images([Image.open(f).convert("RGB") for f in files[s : s + 32]])
                for s in range(0, len(files), 32)
            ]
        )
        caps = json.loads((Path(lib) / "captions.json").read_text())
    texts = [c[0] for c in caps.values()][:100]
    queries = emb.embed_texts(texts)
    i8, scales = quantize_int8(imgs)
    index = VectorIndex(imgs.shape[1])
    index.add(np.arange(len(imgs)), i8, scales)
    hits, times = 0, []
    for q in queries:
        t = time.perf_counter()
        cand = index.search(q, pool)
        best = cand.ids[np.argsort(-(imgs[cand.ids].astype(np.float16).astype(np.float32) @ q))[:10]]
        times.append(time.perf_counter() - t)
        hits += len(set(best.tolist()) & set(np.argsort(-(imgs @ q))[:10].tolist()))
    top = np.sort(imgs @ queries.T, axis=0)[-1]
    print(
        f"\n== demo model {emb.model_id}: {len(imgs)} images, {len(texts)} caption queries, d={imgs.shape[1]}"
    )
    print(
        f"  {percentiles(times)}  recall {hits / (10 * len(queries)):.3f}  best text->image cosine "
        f"median {np.median(top):.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dims", default="512,768")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--pools", default="256", help="candidate pool sizes rescored exactly")
    ap.add_argument("--nprobe", type=int, default=IndexConfig.nprobe)
    args = ap.parse_args()
    config = IndexConfig(nprobe=args.nprobe)
    pools = [int(v) for v in args.pools.split(",")]
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for d in (int(v) for v in args.dims.split(",")):
            for n in (int(v) for v in args.sizes.split(",")):
                bench_size(n, d, args.queries, pools, config, Path(tmp))
    bench_demo_model(pools[0])
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB (whole run)")


if __name__ == "__main__":
    main()
