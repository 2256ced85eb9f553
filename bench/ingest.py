"""Ingest benchmark: end-to-end indexing vs the model alone vs a naive per-image loop.

    python bench/ingest.py [--quick] [--n 300] [--backends mlx,torch] [--cache DIR] [--policies idle,nice10]

Generates (once, cached) large 4000x3000 JPEGs, some with EXIF orientation, and a ViT-B/32-sized
random CLIP (HF folder for torch, converted MLX folder for mlx). For each backend, as a fresh
`fovea index` process would: the decode workers are started (`prestart_decoders`, as
`Library.index_job` does) and the model loaded meanwhile. Then, repeats interleaved so that both
see the same machine load, it reports the median images/s of
  model-only   `embed_pixels` on ready model-size pixel batches of the same sizes (the model alone);
  end-to-end   `app.core.indexer.index` into a fresh database: scan, hash, decode and preprocess in
               the worker processes, embed, store commits (the pool's start-up is not in it: it ran
               while the model loaded; its cost is printed on the isolation line);
  naive        a full-resolution decode + preprocess + embed, one image at a time.
Targets: end-to-end >= 0.9x model-only and >= 1.5x naive. Each backend's line says the priority the
decode workers ran at (app.core.decode_sched), how busy the cores were (CPU/wall) and whose CPU an image
cost (this process vs the decode workers): on a machine whose cores the model fills, the ratio cannot
beat model CPU / (model CPU + decode CPU). --policies adds a same-process A/B of worker priorities
(idle: SCHED_IDLE, niceN: nice +N), interleaved with model-only runs, every repeat's ratio printed so
that the noise shows. The bench also prints the isolation
overhead (the same JPEGs decoded by the worker processes vs by threads in this process, and the
pool's cold start) and per-format decode times (a real photo at 6 Mpx, in every format we read).
Heavy imports live inside the functions: spawned decode workers import this file as their main
module, as they import app/__main__.py for the CLI, and must not pay for the model's imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

Embedder = Any  # app.core.backends.Embedder (imported lazily, see above)


def make_photos(folder: Path, n: int) -> list[Path]:
    """n 4000x3000 JPEGs at quality 85; every 5th carries an EXIF orientation (6 or 8)."""
    from tests.builders.images import photo, save_jpeg

    folder.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> Path:
        p = folder / f"photo_{i:04d}.jpg"
        if not p.exists():
            # Upscaling a small random field is fast and still gives real JPEG entropy to decode.
            im = photo(4000, 3000, seed=i)
            tmp = p.with_suffix(".part")
            save_jpeg(tmp, im, quality=85, **({"orientation": 6 if i % 10 == 0 else 8} if i % 5 == 0 else {}))
            tmp.rename(p)
        return p

    with ThreadPoolExecutor(4) as pool:  # Pillow releases the GIL while resizing and encoding
        return list(pool.map(one, range(n)))


def make_models(cache: Path) -> tuple[Path, Path]:
    """(HF folder, MLX folder) of a randomly initialised CLIP ViT-B/32."""
    hf, mlx_dir = cache / "clip-vit-b32-hf", cache / "clip-vit-b32-mlx"
    if not (hf / "config.json").exists():
        from tests.builders.clip import make_clip_checkpoint

        make_clip_checkpoint(hf, preset="vit-b32")
    if not (mlx_dir / "config.json").exists():
        from converters.convert import convert

        convert(hf, mlx_dir)
    return hf, mlx_dir


def model_only(emb: Embedder, n: int, batch: int) -> float:
    side = emb.preprocess(_probe()).shape[0]
    pixels = np.random.default_rng(0).random((batch, side, side, 3), dtype=np.float32)
    emb.embed_pixels(pixels)  # warm-up (graph building, allocator)
    with Usage() as u:
        for k in range(0, n, batch):
            emb.embed_pixels(pixels[: min(batch, n - k)])
    LAST_USAGE["model-only"] = u
    return n / u.wall


def end_to_end(
    emb: Embedder, folder: Path, n: int, batch: int, workers: int | None, pool: Any = None
) -> float:
    from app.core.indexer import index
    from app.core.store import Store

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
        with Usage() as u:
            job = index(store, emb, [folder], batch_size=batch, workers=workers, pool=pool)
            while True:  # the job returns its summary
                try:
                    next(job)
                except StopIteration as done:
                    summary = done.value
                    break
    if summary.embedded != n:
        raise SystemExit(f"end-to-end embedded {summary.embedded} of {n} images")
    LAST_USAGE["end-to-end"] = u
    return n / u.wall


class Usage:
    """Wall time, this process's CPU (all its threads) and its child processes' CPU (the decode workers,
    read from /proc: they outlive the run, so getrusage cannot see them) over a `with` block.
    CPU/wall near the number of cores means no core was left idle, whether by work or by spinning."""

    def __enter__(self) -> Usage:
        self._t, self._cpu, self._kids = time.perf_counter(), time.process_time(), _children_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t
        self.cpu = time.process_time() - self._cpu
        self.kids = _children_cpu() - self._kids


LAST_USAGE: dict[str, Usage] = {}


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's live children; 0 where /proc is absent (macOS)."""
    me, tick, total = os.getpid(), os.sysconf("SC_CLK_TCK"), 0
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # not a process, or one that just exited
        if int(fields[1]) == me:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def naive(emb: Embedder, paths: list[Path]) -> float:
    from PIL import Image, ImageOps

    t = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            rgb = ImageOps.exif_transpose(im).convert("RGB")  # full-resolution decode
        emb.embed_pixels(emb.preprocess(rgb)[None])
    return len(paths) / (time.perf_counter() - t)


def format_files(cache: Path) -> dict[str, Path]:
    """coffee (scikit-image) at 3000x2000 in every format we read, cached: format -> path."""
    from tests.builders.real_photos import real_photos, write_formats

    folder = cache / "formats"
    done = folder / "done"
    exts = {
        ".jpg": "JPEG",
        ".png": "PNG",
        ".webp": "WebP",
        ".heic": "HEIC",
        ".avif": "AVIF",
        ".jp2": "JPEG 2000",
    }
    exts |= {".tif": "TIFF", ".jxl": "JPEG XL", ".dng": "DNG (demosaic)", ".mpo": "MPO"}
    if not done.exists():
        big = real_photos()["coffee"].resize((3000, 2000), 3)
        write_formats(folder, big, "coffee")
        big.save(folder / "coffee.jpg", quality=90)
        big.save(folder / "coffee.png")
        done.touch()
    return {name: folder / f"coffee{ext}" for ext, name in exts.items() if (folder / f"coffee{ext}").exists()}


def decode_times(files: dict[str, Path], min_side: int, repeats: int) -> dict[str, float]:
    """Median seconds of one in-process open_image (draft/reduce to min_side) per format."""
    from app.core.decode import open_image

    out = {}
    for name, p in files.items():
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            open_image(p, min_side=min_side)
            ts.append(time.perf_counter() - t)
        out[name] = statistics.median(ts)
    return out


def isolation_overhead(emb: Embedder, paths: list[Path], workers: int) -> tuple[float, float, float, float]:
    """(threads img/s, process pool img/s, pool start-up s, CPU s per image): the same decode + preprocess,
    no model. The CPU per image (all threads of this process) is what the workers take from the model."""
    from app.core.decode import decode_ahead, open_image
    from app.core.indexer import decode_job, decode_pool_for

    side = decode_job(emb).min_side
    proc = emb.portable_preprocess  # what the workers run: the draft decode with its full size

    def one(p: Path) -> np.ndarray:
        d = open_image(p, min_side=side)
        return proc(d.image, (d.width, d.height))

    t, cpu = time.perf_counter(), time.process_time()
    for _, fut in decode_ahead(paths, one, workers, 64):
        fut.result()
    threads = len(paths) / (time.perf_counter() - t)
    cpu_per_image = (time.process_time() - cpu) / len(paths)
    t0 = time.perf_counter()
    with decode_pool_for(emb, workers) as pool:
        list(pool.run([Path(p) for p in paths[:1]], 1))  # start-up: spawn, imports, first image
        t1 = time.perf_counter()
        for _, out in pool.run([Path(p) for p in paths], 64):
            assert not hasattr(out, "reason"), out
        t2 = time.perf_counter()
    return threads, len(paths) / (t2 - t1), t1 - t0, cpu_per_image


def worker_priority(emb: Embedder, workers: int) -> str:
    """The priority that the indexer's (kept) decode workers for `emb` asked for and got."""
    from app.core.decode_pool import pool_for
    from app.core.indexer import DECODE_TIMEOUT_S, decode_job

    job = decode_job(emb)
    with pool_for(job, workers, DECODE_TIMEOUT_S) as pool:
        return f"asked {job.priority.describe()}, got {pool.applied}"


def policy_ab(
    emb: Embedder, folder: Path, n: int, batch: int, workers: int, policies: list[str], repeats: int
) -> None:
    """End-to-end with each worker priority; each run paired with a model-only run just before it (the
    policies' order rotates per repeat). Prints every pair's e2e/model, so that the noise shows."""
    from dataclasses import replace

    from app.core.decode_pool import DecodePool
    from app.core.decode_sched import Priority
    from app.core.indexer import DECODE_NICE, DECODE_TIMEOUT_S, decode_job

    def priority(name: str) -> Priority:
        return Priority(idle_class=True, nice=DECODE_NICE) if name == "idle" else Priority(nice=int(name[4:]))

    pools = {
        p: DecodePool(replace(decode_job(emb), priority=priority(p)), workers, DECODE_TIMEOUT_S)
        for p in policies
    }
    try:
        for p in policies:  # each pool's start (not timed), and its workers report what they got
            end_to_end(emb, folder, n, batch, workers, pools[p])
        ratios: dict[str, list[float]] = {p: [] for p in policies}
        for r in range(repeats):
            for p in policies[r % len(policies) :] + policies[: r % len(policies)]:
                m = model_only(emb, n, batch)
                ratios[p].append(end_to_end(emb, folder, n, batch, workers, pools[p]) / m)
        for p in policies:
            runs = " ".join(f"{r:.2f}" for r in ratios[p])
            print(
                f"  {p:7s} ({pools[p].applied:10s}) e2e/model median {statistics.median(ratios[p]):.3f}"
                f"   pairs: {runs}"
            )
    finally:
        for pool in pools.values():
            pool.close()


def cpu_line(usage: list[tuple[Usage, Usage]], n: int) -> str:
    """Medians over the repeats: how busy the cores were, and whose CPU an end-to-end image cost."""
    med = statistics.median
    return (
        f"CPU/wall: model-only {med(m.cpu / m.wall for m, _ in usage):.2f}, "
        f"end-to-end {med((e.cpu + e.kids) / e.wall for _, e in usage):.2f} on {os.cpu_count()} CPUs | "
        f"CPU per image: model-only {med(m.cpu for m, _ in usage) / n * 1000:.0f} ms, end-to-end "
        f"{med(e.cpu for _, e in usage) / n * 1000:.0f} ms in this process + "
        f"{med(e.kids for _, e in usage) / n * 1000:.1f} ms in the decode workers"
    )


def _probe():
    from PIL import Image

    return Image.new("RGB", (320, 240), (128, 128, 128))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 images, 3 repeats, naive on 12")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--backends", default="mlx,torch")
    ap.add_argument("--naive-n", type=int, default=40, help="images for the (slow) naive loop")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fovea-bench-ingest")
    ap.add_argument("--policies", default="", help="A/B of worker priorities, e.g. idle,nice10,nice19")
    ap.add_argument("--ab-repeats", type=int, default=4)
    args = ap.parse_args(argv)
    import mlx_models  # noqa: F401  (prepares the MLX runtime before anything imports mlx.core)

    from app.core import decode_pool
    from app.core.backends import open_embedder
    from app.core.indexer import prestart_decoders

    # --quick: 40 images, the runs interleaved 3 times (each takes seconds), a 12-image naive loop.
    n, repeats = (40, 3) if args.quick else (args.n, args.repeats)
    naive_n = 12 if args.quick else args.naive_n
    print(f"load average at start: {os.getloadavg()} on {os.cpu_count()} CPUs (the machine may be shared)")

    t = time.perf_counter()
    paths = make_photos(args.cache / "photos", n)
    folder = args.cache / f"lib-{n}"  # a library of exactly n photos, as links into the cache
    folder.mkdir(exist_ok=True)
    for p in paths:
        if not (folder / p.name).exists():
            (folder / p.name).symlink_to(p)
    hf, mlx_dir = make_models(args.cache)
    print(f"data ready in {time.perf_counter() - t:.1f}s: {n} photos 4000x3000, CLIP ViT-B/32 (random)")

    rows = []
    workers = args.workers or min(4, os.cpu_count() or 1)
    for backend in args.backends.split(","):
        decode_pool.close_shared()  # each backend as a fresh process: its own workers, started anew
        t = time.perf_counter()
        prestart_decoders(args.workers)  # as Library.index_job: the workers start while the model loads
        emb = open_embedder(mlx_dir if backend == "mlx" else hf, backend)
        load_s = time.perf_counter() - t
        ms, es, usage = [], [], []
        for _ in range(repeats):  # interleaved: a change in the machine's load hits both alike
            ms.append(model_only(emb, n, args.batch_size))
            es.append(end_to_end(emb, folder, n, args.batch_size, args.workers))
            usage.append((LAST_USAGE["model-only"], LAST_USAGE["end-to-end"]))
        m, e = statistics.median(ms), statistics.median(es)
        nv = statistics.median(naive(emb, paths[: min(n, naive_n)]) for _ in range(min(repeats, 2)))
        rows.append((backend, m, e, nv, [x / y for x, y in zip(es, ms, strict=True)]))
        print(
            f"{backend:6s} model-only {m:7.1f} img/s | end-to-end {e:7.1f} img/s | naive {nv:7.1f} img/s"
            f"   (model load {load_s:.1f} s; load average {os.getloadavg()[0]:.1f})"
            f"\n       decode workers: {worker_priority(emb, workers)}"
            f"\n       {cpu_line(usage, n)}",
            flush=True,
        )
        if args.policies:
            print(f"{backend} worker priority A/B, {args.ab_repeats} interleaved repeats:")
            policy_ab(emb, folder, n, args.batch_size, workers, args.policies.split(","), args.ab_repeats)
            print(f"       (load average {os.getloadavg()[0]:.1f})", flush=True)
    print(
        "\nbackend  e2e/model (>=0.9)  e2e/naive (>=1.5)   e2e/model of each repeat (run after its model-only)"
    )
    for backend, m, e, nv, pairs in rows:
        print(f"{backend:8s} {e / m:17.2f}  {e / nv:17.2f}   {' '.join(f'{r:.2f}' for r in pairs)}")

    emb = open_embedder(mlx_dir, "mlx")
    th, pl, start, cpu = isolation_overhead(emb, paths[: min(n, 80)], workers)
    print(
        f"\nisolation ({workers} workers, decode+preprocess only, no model): threads {th:.1f} img/s | "
        f"worker processes {pl:.1f} img/s | processes/threads {pl / th:.2f} | pool start + 1 image {start:.2f} s"
        f"\ndecode+preprocess CPU per photo (what the workers take from the model): {cpu * 1000:.1f} ms"
    )
    side = 2 * emb.preprocess(_probe()).shape[0]
    print(f"\ndecode time per file, in-process, 3000x2000 'coffee' (scikit-image), reduced to >= {side} px:")
    for name, sec in decode_times(format_files(args.cache), side, max(3, repeats)).items():
        print(f"  {name:16s} {sec * 1000:7.1f} ms")
    print(f"\nload average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
