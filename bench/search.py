"""Search benchmark: the VectorIndex + float16 rescoring pipeline against float32 numpy brute force (rclip),
on several corpus generators, grown the way the indexer grows it; it prints the WORST case, not the mean.

Generators are Gaussian mixtures in a latent space mapped up to d with noise and normalised; queries
come from a distorted map pushed along a common offset (the modality gap of text against images),
from none to strong. Each corpus arrives sorted by mixture component (a library added folder by folder)
in indexer-sized batches (`--batch`, 32 like app.core.indexer); `--bulk` adds the one-batch build too.
Per generator: p50/p95 latency of candidates + exact rescoring, recall@10 against exact float32, resident
bytes. The rescoring vectors are read per query from a real SQLite store (Store.f16_vectors) for the
first generator of each size; the others rescore from an in-memory float16 copy (same arithmetic).
Then the cold start of a persisted index (app.core.index_file), and the demo model's own embeddings.

    python bench/search.py                                   # N = 100k and 1M, d = 512, every generator
    python bench/search.py --sizes 100000 --gens base,strong-shift --queries 50
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
POOL = 64  # the engine's candidate pool for k = 10: max(64, 4k)

# name: (latent dim, mixture components, within-component spread, isotropic noise, query shift, query map distortion)
GENERATORS: dict[str, tuple[int, int, float, float, float, float]] = {
    "base": (96, 512, 0.8, 0.6, 1.2, 0.6),  # the generator the old IVF knobs were chosen on
    "no-shift": (96, 512, 0.8, 0.6, 0.0, 0.0),  # image -> image queries
    "low-rank": (16, 64, 0.8, 0.3, 0.6, 0.6),
    "high-rank": (384, 2048, 0.8, 0.3, 1.2, 0.6),
    "strong-shift": (64, 256, 0.8, 0.6, 2.5, 1.0),
    "near-isotropic": (512, 4096, 1.0, 0.1, 1.2, 0.6),
}


def mixture(name: str, n: int, d: int, nq: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) unit corpus rows sorted by component (drifting arrival) and (nq, d) unit queries."""
    latent, comps, spread, noise, shift, distort = GENERATORS[name]
    rng = np.random.default_rng([seed, latent, comps])
    centers = rng.standard_normal((comps, latent)).astype(np.float32)
    up = (rng.standard_normal((latent, d)) / np.sqrt(latent)).astype(np.float32)
    up_q = up + (distort * rng.standard_normal((latent, d)) / np.sqrt(latent)).astype(np.float32)
    gap = rng.standard_normal(d).astype(np.float32)
    gap /= np.linalg.norm(gap)

    def draw(comp: np.ndarray, r: np.random.Generator, u: np.ndarray, sh: float) -> np.ndarray:
        z = centers[comp] + spread * r.standard_normal((len(comp), latent), np.float32)
        x = z @ u + noise * r.standard_normal((len(comp), d), np.float32)
        x = x / np.linalg.norm(x, axis=1, keepdims=True) + sh * gap
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    comp = np.sort(rng.integers(0, comps, n))
    x = np.empty((n, d), np.float32)
    for s in range(0, n, 50_000):
        x[s : s + 50_000] = draw(comp[s : s + 50_000], np.random.default_rng([seed, s]), up, 0.0)
    queries = draw(rng.integers(0, comps, nq), np.random.default_rng([seed, 10**9]), up_q, shift)
    return x, queries


def exact_top10(x: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = np.concatenate([x[s : s + 200_000] @ queries.T for s in range(0, len(x), 200_000)])  # (n, nq)
    return np.argsort(-scores, axis=0)[:10].T  # (nq, 10) row numbers


def percentiles(times: list[float]) -> str:
    t = np.array(times) * 1e3
    return f"p50 {np.percentile(t, 50):6.2f} ms  p95 {np.percentile(t, 95):6.2f} ms"


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


def grow(x: np.ndarray, batch: int, config: IndexConfig) -> tuple[VectorIndex, float]:
    ids = np.arange(1, len(x) + 1, dtype=np.int64)
    t = time.perf_counter()
    index = VectorIndex(x.shape[1], config)
    for s in range(0, len(x), 200_000):  # quantise in slices: no second full-size copy
        i8, scales = quantize_int8(x[s : s + 200_000])
        for a in range(0, len(i8), batch):
            index.add(ids[s + a : s + a + batch], i8[a : a + batch], scales[a : a + batch])
    return index, time.perf_counter() - t


def measure(index: VectorIndex, x: np.ndarray, queries: np.ndarray, truth: np.ndarray, store: Store | None):
    """(latency list, recall@10) of candidates + exact float16 rescoring, as the engine ranks."""
    f16 = None if store is not None else x.astype(np.float16)
    times, hits = [], 0
    for qi, q in enumerate(queries):
        t = time.perf_counter()
        cand = index.search(q, POOL)
        vecs = store.f16_vectors(MODEL, cand.ids.tolist()) if store is not None else f16[cand.ids - 1]
        best = cand.ids[np.argsort(-(vecs.astype(np.float32) @ q))[:10]]
        times.append(time.perf_counter() - t)
        hits += len(set((best - 1).tolist()) & set(truth[qi].tolist()))
    return times, hits / (10 * len(queries))


def brute_force(x: np.ndarray, queries: np.ndarray) -> list[float]:
    times = []  # rclip: float32 matrix product over everything, then top 10
    for q in queries:
        t = time.perf_counter()
        s = x @ q
        top = np.argpartition(-s, 10)[:10]
        top[np.argsort(-s[top])]
        times.append(time.perf_counter() - t)
    return times


def bench_size(n: int, d: int, args: argparse.Namespace, tmp: Path) -> list[tuple[str, float, float]]:
    rows = []
    print(
        f"\n== N={n:,} d={d}: {args.queries} queries, pool {POOL} rescored in float16, batches of {args.batch}"
    )
    for gi, name in enumerate(args.gens.split(",")):
        x, queries = mixture(name, n, d, args.queries)
        truth = exact_top10(x, queries)
        if gi == 0:
            bt = brute_force(x, queries)
            print(
                f"  float32 brute force        {percentiles(bt)}  recall 1.000  memory {x.nbytes / 2**20:7.1f} MiB"
            )
        store = fill_store(tmp / f"bench-{n}-{d}.sqlite", x) if gi == 0 else None
        modes = [("drift", args.batch)] + ([("bulk", len(x))] if args.bulk else [])
        for mode, batch in modes:
            index, build = grow(x, batch, IndexConfig(prefix_dims=args.prefix_dims))
            times, recall = measure(index, x, queries, truth, store)
            src = "SQLite" if store is not None else "memory"
            print(
                f"  {name:<15} {mode:<5} {percentiles(times)}  recall {recall:.3f}  memory "
                f"{index.nbytes / 2**20:6.1f} MiB ({index.nbytes / x.nbytes:.2f}x f32)  build {build:5.1f} s"
                f"  (f16 from {src}; speedup {np.median(bt) / np.median(times):4.1f}x)"
            )
            rows.append((f"{name}/{mode}", recall, float(np.median(times))))
            if args.cold and gi == 0 and mode == "drift":
                cold_start(index, tmp / f"index-{n}.fvx", queries[0])
            del index
        if store is not None:
            store.close()
        del x
    return rows


def cold_start(index: VectorIndex, path: Path, q: np.ndarray) -> None:
    """Save the index, then time a fresh process's load + first query (what the GUI and CLI pay)."""
    import subprocess

    from app.core.index_file import save_index

    t = time.perf_counter()
    save_index(path, index, generation=1, last_rowid=len(index), model_id=MODEL)
    saved = time.perf_counter() - t
    np.save(path.with_suffix(".q.npy"), q)
    code = (
        "import time, numpy as np; from app.core.index_file import load_index; t = time.perf_counter(); "
        f"idx = load_index({str(path)!r}, model_id={MODEL!r}, dim={index.dim}, generation=1).index; "
        f"t1 = time.perf_counter(); idx.search(np.load({str(path.with_suffix('.q.npy'))!r}), {POOL}); "
        "print(t1 - t, time.perf_counter() - t1)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        runs.append((time.perf_counter() - t, *map(float, out.stdout.split())))
    wall, load, first = (float(np.median([r[i] for r in runs])) for i in range(3))
    print(
        f"    cold start, new process: load {path.stat().st_size / 2**20:.0f} MiB index (XXH3-checked) "
        f"{load * 1e3:.0f} ms + first query {first * 1e3:.0f} ms = {(load + first) * 1e3:.0f} ms "
        f"(whole process with imports {wall:.2f} s; save {saved:.1f} s)"
    )


def bench_demo_model(n: int) -> tuple[str, float, float] | None:
    from app.core.paths import demo_model_dir

    folder = demo_model_dir()
    if not (folder / "config.json").exists():
        print(f"\n== demo model: skipped ({folder} does not exist yet)")
        return None
    import json

    from PIL import Image

    from app.core.backends import open_embedder
    from app.core.demo import write_demo_library

    emb = open_embedder(folder, "mlx")
    with tempfile.TemporaryDirectory() as lib:
        for _ in write_demo_library(Path(lib), n=n):
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
    # The two-stage rule forced on a small corpus: a prefix of 1/4 of the dimensions, small first pass.
    cfg = IndexConfig(
        exhaustive_below=200, prefix_dims=imgs.shape[1] // 4, first_pass=64, min_rescore_cap=128
    )
    index, _ = grow(imgs, 32, cfg)
    truth = exact_top10(imgs, queries)
    times, recall = measure(index, imgs, queries, truth, None)
    top = np.sort(imgs @ queries.T, axis=0)[-1]
    print(
        f"\n== demo model {emb.model_id}: {len(imgs)} images, {len(texts)} caption queries, d={imgs.shape[1]}"
    )
    print(
        f"  two-stage forced  {percentiles(times)}  recall {recall:.3f}  best text->image cosine "
        f"median {np.median(top):.3f}"
    )
    return ("demo-model", recall, float(np.median(times)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--dims", default="512")
    ap.add_argument("--gens", default=",".join(GENERATORS))
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32, help="rows per add (the indexer's batch)")
    ap.add_argument("--bulk", action="store_true", help="also build each index in one batch")
    ap.add_argument(
        "--no-cold", dest="cold", action="store_false", help="skip the persisted-index cold start"
    )
    ap.add_argument("--demo-images", type=int, default=1000)
    ap.add_argument(
        "--prefix-dims", type=int, default=IndexConfig.prefix_dims, help="coordinates scanned for every row"
    )
    args = ap.parse_args()
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, numpy {np.__version__}, OPENBLAS_NUM_THREADS {threads}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in (int(v) for v in args.dims.split(",")):
            for n in (int(v) for v in args.sizes.split(",")):
                worst = bench_size(n, d, args, Path(tmp))
                r = min(worst, key=lambda w: w[1])
                t = max(worst, key=lambda w: w[2])
                print(
                    f"  WORST at N={n:,} d={d}: recall@10 {r[1]:.3f} ({r[0]}), p50 {t[2] * 1e3:.2f} ms ({t[0]})"
                )
                rows += worst
    if args.demo_images:
        demo = bench_demo_model(args.demo_images)
        rows += [demo] if demo else []
    r = min(rows, key=lambda w: w[1])
    print(f"\nWORST recall@10 over every distribution: {r[1]:.3f} ({r[0]})")
    print(
        f"load average {os.getloadavg()[0]:.1f}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB"
    )


if __name__ == "__main__":
    main()
