"""The indexing job: scan roots, detect changes, decode in worker processes, embed in batches, store.

`index()` is a plain generator of `JobProgress` (phase 'scan', 'embed', then 'done') returning the
IndexSummary; the CLI draws a bar from it and the GUI runs it in a worker. Every batch is one transaction, so a crash or kill loses at most the open batch.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from app.core import decode_pool, text_index
from app.core.backends import Embedder
from app.core.contracts import JobKind, JobProgress
from app.core.decode_pool import DecodeJob, DecodePool, Failed, pool_for
from app.core.decode_sched import priority_here
from app.core.embed_engine import EmbedEngine, embed_with
from app.core.jobs import progress as job_progress
from app.core.library import Changes, RootScan, WalkOptions, apply_changes, scan_root
from app.core.paths import user_data_dir
from app.core.roots import add_root, plan_scans
from app.core.store import Store

# Interleave scan and embed once a chunk of the scan leaves this many new images: a fault after N minutes
# then keeps N minutes of embeddings (a scan that stored every row first kept none: issue 20).
INTERLEAVE_MIN = 64


@dataclass
class IndexSummary:
    added: int = 0  # new files found
    updated: int = 0  # same path, new content
    moved: int = 0  # renamed or moved; embeddings, tags and captions kept
    missing: int = 0  # gone since the last run (kept, marked 'missing')
    errors: int = 0  # per-file errors recorded this run
    skipped: int = 0  # already embedded for this model, nothing recomputed (moved files included)
    embedded: int = 0  # images embedded this run
    in_cloud: int = 0  # iCloud files not on this disk: recorded, not read
    other_files: int = 0  # files that are not images (only counted)
    offline_roots: list[Path] = field(default_factory=list)
    notes: list[str] = field(
        default_factory=list
    )  # what a person should know about this run (folded roots ...)
    stopped: bool = False  # should_stop() ended the run early (everything done so far is committed)


@dataclass
class _Item:
    image_id: int
    path: Path


@dataclass
class _Decoded:
    pixels: np.ndarray  # (H, W, 3) float32: the model input
    width: int
    height: int
    taken_at: str | None
    camera: str | None
    notes: str | None = None


# Far above any sane decode (a 100 Mpx TIFF, a RAW demosaic on a slow Mac take seconds), yet a hang ends.
DECODE_TIMEOUT_S = 60.0


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)


# What unpickling a decode job imports (the families' image processors: mlx_models, and so MLX itself).
PROCESSOR_MODULES = ("mlx_models.clip.image_processor", "mlx_models.siglip.image_processor")


def prestart_decoders(workers: int | None = None) -> None:
    """Start the decode worker processes now, before the model loads (they get their job later); they
    import the image processors meanwhile, which would otherwise delay the first file (~50 ms loaded)."""
    decode_pool.prestart(workers or default_workers(), preload=PROCESSOR_MODULES)


# Decoding a photo costs a fraction of embedding it: at a lower priority the workers fill the queue in the
# model's gaps (its single-threaded ops) instead of taking cores from it on a small machine (2 cores).
# On Linux they run in the idle class instead, where the pool can read their run-queue wait (decode_sched).
DECODE_NICE = 10


# JPEGs are draft-decoded to at least twice the model's input side. Once (a 12 Mpx photo at 1/8 instead
# of 1/4) would cut the workers' CPU by a third, but bench/draft_rule.py measured the model input 4-5x and
# the embedding 15-17x further from the reference (transformers on the full decode) on 4000x3000 real
# detail: 1-cos 5.7e-4 to 3.2e-3 against 3.3e-5 to 2.1e-4 (random ViT-B/32). Not the same order: kept at 2x.
DRAFT_FACTOR = 2


def decode_job(embedder: Embedder) -> DecodeJob:
    """Decode for `embedder`: at least twice its input side (JPEG draft, reduce), its processor if it travels."""
    return DecodeJob(
        min_side=DRAFT_FACTOR * model_input_side(embedder),
        preprocess=_shippable_preprocess(embedder),
        priority=priority_here(DECODE_NICE),
    )


def decode_pool_for(embedder: Embedder, workers: int, timeout_s: float = DECODE_TIMEOUT_S) -> DecodePool:
    """A private pool of worker processes that decode for `embedder` (close it after use)."""
    return DecodePool(decode_job(embedder), workers, timeout_s)


def _shippable_preprocess(embedder: Embedder) -> Callable | None:
    """The embedder's settings-only image processor (`portable_preprocess`: both backends have one),
    which pickles in a few hundred bytes: workers then return the model input itself, and the
    parent's cores stay with the model. Other embedders preprocess in the parent (see `_finisher`)."""
    proc = getattr(embedder, "portable_preprocess", None)
    if proc is None:
        return None
    try:
        return proc if len(pickle.dumps(proc)) < 65536 else None
    except Exception:  # noqa: BLE001 - anything unpicklable simply stays in the parent
        return None


def _finisher(embedder: Embedder) -> Callable[[np.ndarray], np.ndarray] | None:
    """Parent-side preprocessing of worker-returned uint8 RGB, for embedders whose processor stays here."""
    if _shippable_preprocess(embedder) is not None:
        return None
    return lambda rgb: embedder.preprocess(Image.fromarray(rgb, "RGB"))


def model_input_side(embedder: Embedder) -> int:
    """The model's square input side, used for JPEG draft decoding (declared by every backend)."""
    return int(embedder.image_size)


def index(
    store: Store,
    embedder: Embedder,
    roots: list[Path],
    *,
    batch_size: int = 32,
    workers: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    download_icloud: bool = False,
    decode_timeout_s: float = DECODE_TIMEOUT_S,
    pool: DecodePool | None = None,
    engine: EmbedEngine | None = None,
) -> Generator[JobProgress, None, IndexSummary]:
    """Add `roots` to the library and bring it up to date for `embedder.model_id`.

    Yields JobProgress during the scan and after every committed batch, then one 'done' item, and
    returns the IndexSummary. should_stop() is checked between batches.
    Files are decoded in worker processes (app.core.decode_pool): a `pool` may be passed in to reuse one.
    An `engine` (app.core.cluster) decodes and embeds elsewhere instead; this process still writes every row.
    """
    t0 = time.monotonic()
    summary = IndexSummary()
    workers = workers or default_workers()

    def progress(phase: str, done: int, total: int | None) -> JobProgress:
        # An ETA only while embedding against a known total: the scan's pace says nothing about it.
        elapsed = time.monotonic() - t0 if phase == "embed" else None
        return job_progress(JobKind.INDEX, done, total, phase, summary.errors, elapsed)

    # Scan: walk every root, then compare all of them with the store at once.
    options = WalkOptions(download_icloud=download_icloud, own_dirs=(user_data_dir(),))
    plans = plan_scans([add_root(store, Path(r), time.time()) for r in roots])
    summary.notes += [
        f"{p.scope} is inside the library {p.root}: indexed as part of it" for p in plans if p.folded
    ]
    scans: list[RootScan] = []
    seen = 0
    for plan in plans:
        for item in scan_root(store, plan, options):
            if isinstance(item, RootScan):
                scans.append(item)
                seen += len(item.files)
                if not item.online:
                    summary.offline_roots.append(item.root)
            else:
                yield progress("scan", seen + item, None)
    online = [s.root_id for s in scans if s.online]
    depth = batch_size + 2 * workers
    with ExitStack() as stack:
        pools: list[DecodePool] = [pool] if pool else []

        def started() -> DecodePool:
            # The decode workers start only when there is something to embed (lazily, as before).
            if not pools:
                pools.append(stack.enter_context(pool_for(decode_job(embedder), workers, decode_timeout_s)))
            return pools[0]

        def stage(todo: list[_Item]) -> Iterator[int]:
            if engine is not None:
                return embed_with(store, embedder, todo, engine, batch_size, summary)
            return _embed(store, embedder, todo, started(), batch_size, depth, summary)

        changes = Changes()
        done = 0
        for n, changes in apply_changes(store, scans, time.time()):
            summary.errors = changes.errors
            yield progress("scan", n, seen)
            # Embed what the scan has committed so far, so a fault later (a full disk, a kill) keeps this work.
            pending = _todo(store, embedder.model_id, online, pending_only=True)
            if len(pending) >= (INTERLEAVE_MIN if engine is None else engine.interleave_min):
                start = done
                for k in stage(pending):
                    done = start + k
                    yield progress("embed", done, None)
                    if should_stop is not None and should_stop():
                        summary.stopped = True
                        break
            if summary.stopped:
                break
        summary.added, summary.updated, summary.moved = changes.added, changes.updated, changes.moved
        text_index.refresh(store)  # new, moved and renamed files: their names are searchable at once
        summary.missing, summary.errors = changes.missing, changes.errors
        summary.in_cloud = changes.in_cloud
        summary.other_files = sum(s.stats.other_files for s in scans)
        summary.notes += [n for s in scans for n in s.stats.notes]

        todo = [] if summary.stopped else _todo(store, embedder.model_id, online)
        summary.skipped = store.embedded_count_in(embedder.model_id, online) - summary.embedded
        total = done + len(todo)
        yield progress("embed", done, total)
        if todo:
            start = done
            for k in stage(todo):
                done = start + k
                yield progress("embed", done, total)
                if should_stop is not None and should_stop() and done < total:
                    summary.stopped = True
                    break
    yield progress("done", done, total)
    return summary


def _embed(
    store: Store,
    embedder: Embedder,
    todo: list[_Item],
    pool: DecodePool,
    batch_size: int,
    depth: int,
    summary,
) -> Iterator[int]:
    """Decode in the pool and embed; yields the number of files handled after each committed batch.

    The model does not wait for a whole batch to be decoded: when the next file is not decoded yet, it
    embeds the ones it holds (at least a quarter batch), so decoding at the start of a run, or of slow
    formats, overlaps with the model. Otherwise it embeds `batch_size` rows per call, across commit
    boundaries: after an early call on 9 rows the next one takes 32, not the 23 that close the batch
    (a small call costs the model more per image). A batch of `batch_size` files is committed in one
    transaction as soon as its rows are embedded."""
    rows = _Rows()
    failed: list[tuple[_Item, str | None, str | None]] = []  # (item, reason, notes); reason None: vanished
    done = 0
    early = max(1, batch_size // 4)
    # Depth: enough decoded inputs queued to fill the next batch while this one embeds.
    for got in pool.run([it.path for it in todo], depth, _finisher(embedder), report_waits=True):
        if got is None:  # nothing decoded to take right now: use the model on what is here
            if rows.pending >= early:
                rows.embed(embedder, batch_size)
        else:
            k, out = got
            if isinstance(out, Failed):
                failed.append((todo[k], with_first_note(out.reason, out.notes), out.notes))
            else:
                rows.add(
                    todo[k], _Decoded(out.pixels, out.width, out.height, out.taken_at, out.camera, out.notes)
                )
                if rows.pending >= batch_size:
                    rows.embed(embedder, batch_size)
        while rows.embedded + len(failed) >= batch_size:
            done += _commit_embedded(store, embedder.model_id, rows, failed, batch_size, summary)
            yield done
    while rows.pending:
        rows.embed(embedder, batch_size)
    while len(rows) or failed:
        done += _commit_embedded(store, embedder.model_id, rows, failed, batch_size, summary)
        yield done


class _Rows:
    """Decoded rows not committed yet, in order, and the embeddings of the first `embedded` of them."""

    def __init__(self) -> None:
        self.items: list[tuple[_Item, _Decoded]] = []
        self.vectors: list[np.ndarray] = []  # (n, d) parts, in row order

    def __len__(self) -> int:
        return len(self.items)

    @property
    def embedded(self) -> int:
        return sum(len(v) for v in self.vectors)

    @property
    def pending(self) -> int:
        return len(self.items) - self.embedded

    def add(self, item: _Item, decoded: _Decoded) -> None:
        self.items.append((item, decoded))

    def embed(self, embedder: Embedder, most: int) -> None:
        """One model call on the next rows not embedded yet, at most `most` of them."""
        start = self.embedded
        part = self.items[start : start + most]
        self.vectors.append(embedder.embed_pixels(np.stack([d.pixels for _, d in part])))  # (N, d)

    def take(self, n: int) -> tuple[list[tuple[_Item, _Decoded]], np.ndarray | None]:
        """The first `n` rows (embedded ones) and their vectors, removed from here."""
        if n == 0:
            return [], None
        vecs = np.concatenate(self.vectors)
        taken, self.items = self.items[:n], self.items[n:]
        self.vectors = [vecs[n:]] if len(vecs) > n else []
        return taken, vecs[:n]


def _commit_embedded(store: Store, model_id: str, rows: _Rows, failed, batch_size: int, summary) -> int:
    """One transaction of at most `batch_size` files: the failures so far, then the first embedded rows."""
    batch, vectors = rows.take(min(rows.embedded, max(0, batch_size - len(failed))))
    return commit_batch(store, model_id, batch, vectors, failed, summary)


def with_first_note(reason: str | None, notes: str | None) -> str | None:
    """The reason, plus what the decoder said first (e.g. libtiff's "Read error on strip 0"), for context."""
    if reason is None or not notes:
        return reason
    first = notes.splitlines()[0]
    return f"{reason}; the decoder said: {first[:200]}"


def _todo(store: Store, model_id: str, root_ids: list[int], pending_only: bool = False) -> list[_Item]:
    """Pending images, and 'ok' ones without an embedding for this model (a model change re-embeds).
    `pending_only` (cheap, through the status index) is what the interleaved passes use."""
    return [_Item(i, p) for i, p in store.todo_images(model_id, root_ids, pending_only)]


def commit_batch(store: Store, model_id: str, batch, vectors, failed, summary: IndexSummary) -> int:
    """One transaction: `batch` [(item, decoded)] with its `vectors` (N, d), and `failed` [(item, reason,
    notes)] (reason None: vanished). Both lists are emptied; returns the number of files handled."""
    now = time.time()
    with store.transaction():
        if batch:
            store.put_embeddings(model_id, [it.image_id for it, _ in batch], vectors)
            store.mark_decoded(
                [(d.width, d.height, d.taken_at, d.camera, d.notes, it.image_id) for it, d in batch], now
            )
            for it, _ in batch:
                store.clear_error(it.path)
        for it, reason, notes in failed:
            if reason is None:
                store.mark_missing(it.image_id)
                summary.missing += 1
            else:
                store.mark_failed(it.image_id, reason, now, notes)
                store.record_error(it.path, reason, now)
                summary.errors += 1
        text_index.refresh(store)  # the writer keeps the text index current; searches only read it
    summary.embedded += len(batch)
    n = len(batch) + len(failed)
    batch.clear()
    failed.clear()
    return n
