"""The indexing job: scan roots, detect changes, decode ahead on threads, embed in batches, store.

`index()` is a plain generator of `Progress`; the CLI draws a bar from it and the GUI runs it in a
worker. Every batch is one transaction, so a crash or kill loses at most the open batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core import text_index
from app.core.backends import Embedder
from app.core.decode import DecodeError, decode_ahead, open_image
from app.core.library import Changes, RootScan, WalkOptions, apply_changes, scan_root
from app.core.paths import user_data_dir
from app.core.roots import add_root, plan_scans
from app.core.store import Store, text_to_path


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
class Progress:
    phase: str  # 'scan' | 'embed' | 'done'
    done: int
    total: int | None  # None while the scan does not know yet
    errors: int
    current: Path | None
    elapsed_s: float
    summary: IndexSummary | None = None  # set on the final 'done' item

    @property
    def eta_s(self) -> float | None:
        if not self.total or not self.done or self.phase != "embed":
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


@dataclass
class _Item:
    image_id: int
    path: Path


@dataclass
class _Decoded:
    pixels: np.ndarray  # (H, W, 3) float32 from embedder.preprocess
    width: int
    height: int
    taken_at: str | None
    camera: str | None


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
) -> Iterator[Progress]:
    """Add `roots` to the library and bring it up to date for `embedder.model_id`.

    Yields Progress during the scan and after every committed batch, then one 'done' item carrying
    the IndexSummary (also the generator's return value). should_stop() is checked between batches.
    """
    t0 = time.monotonic()
    summary = IndexSummary()
    workers = workers or min(4, os.cpu_count() or 1)

    def progress(phase: str, done: int, total: int | None, current: Path | None) -> Progress:
        return Progress(phase, done, total, summary.errors, current, time.monotonic() - t0)

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
                yield progress("scan", seen + item, None, plan.scope)
    changes = Changes()
    for done, changes in apply_changes(store, scans, time.time()):
        summary.errors = changes.errors
        yield progress("scan", done, seen, None)
    summary.added, summary.updated, summary.moved = changes.added, changes.updated, changes.moved
    text_index.refresh(store)  # new, moved and renamed files: their names are searchable at once
    summary.missing, summary.errors = changes.missing, changes.errors
    summary.in_cloud = changes.in_cloud
    summary.other_files = sum(s.stats.other_files for s in scans)
    summary.notes += [n for s in scans for n in s.stats.notes]

    todo = _todo(store, embedder.model_id, [s.root_id for s in scans if s.online])
    summary.skipped = _count_embedded(store, embedder.model_id, [s.root_id for s in scans if s.online])
    yield progress("embed", 0, len(todo), None)

    side = model_input_side(embedder)

    def decode(item: _Item) -> _Decoded:
        d = open_image(item.path, min_side=2 * side)  # draft: at least twice the input side, for quality
        return _Decoded(embedder.preprocess(d.image), d.width, d.height, d.taken_at, d.camera)

    batch: list[tuple[_Item, _Decoded]] = []
    failed: list[tuple[_Item, str | None]] = []  # reason None: the file vanished
    done = 0
    # Depth: enough decoded inputs queued to fill the next batch while this one embeds.
    for item, fut in decode_ahead(todo, decode, workers, depth=batch_size + 2 * workers):
        err = fut.exception()
        if err is None:
            batch.append((item, fut.result()))
        elif isinstance(err, FileNotFoundError):
            failed.append((item, None))
        elif isinstance(err, DecodeError):
            failed.append((item, err.reason))
        else:
            failed.append((item, f"{type(err).__name__}: {err}"))
        if len(batch) + len(failed) >= batch_size:
            done += _flush(store, embedder, batch, failed, summary)
            yield progress("embed", done, len(todo), item.path)
            if should_stop is not None and should_stop():
                summary.stopped = True
                break
    if not summary.stopped and (batch or failed):
        done += _flush(store, embedder, batch, failed, summary)
        yield progress("embed", done, len(todo), None)
    final = progress("done", done, len(todo), None)
    final.summary = summary
    yield final
    return summary


def _todo(store: Store, model_id: str, root_ids: list[int]) -> list[_Item]:
    """Pending images, and 'ok' ones without an embedding for this model (a model change re-embeds)."""
    if not root_ids:
        return []
    marks = ",".join("?" * len(root_ids))
    rows = store.conn.execute(
        f"""SELECT id, path FROM images i WHERE root_id IN ({marks}) AND (status = 'pending' OR (status = 'ok'
              AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.model_id = ?)))
            ORDER BY id""",
        (*root_ids, model_id),
    ).fetchall()
    return [_Item(int(i), text_to_path(p)) for i, p in rows]


def _count_embedded(store: Store, model_id: str, root_ids: list[int]) -> int:
    if not root_ids:
        return 0
    marks = ",".join("?" * len(root_ids))
    return store.conn.execute(
        f"""SELECT count(*) FROM images i JOIN embeddings e ON e.image_id = i.id AND e.model_id = ?
            WHERE i.root_id IN ({marks}) AND i.status = 'ok'""",
        (model_id, *root_ids),
    ).fetchone()[0]


def _flush(store: Store, embedder: Embedder, batch, failed, summary: IndexSummary) -> int:
    """Embed one batch and commit it together with the batch's failures, in one transaction."""
    vectors = embedder.embed_pixels(np.stack([d.pixels for _, d in batch])) if batch else None  # (N, d)
    now = time.time()
    with store.transaction() as conn:
        if batch:
            store.put_embeddings(embedder.model_id, [it.image_id for it, _ in batch], vectors)
            conn.executemany(
                """UPDATE images SET status = 'ok', error = NULL, width = ?, height = ?, taken_at = ?, camera = ?,
                   indexed_at = ? WHERE id = ?""",
                [(d.width, d.height, d.taken_at, d.camera, now, it.image_id) for it, d in batch],
            )
            for it, _ in batch:
                store.clear_error(it.path)
        for it, reason in failed:
            if reason is None:
                conn.execute("UPDATE images SET status = 'missing' WHERE id = ?", (it.image_id,))
                summary.missing += 1
            else:
                conn.execute(
                    "UPDATE images SET status = 'error', error = ?, indexed_at = ? WHERE id = ?",
                    (reason, now, it.image_id),
                )
                store.record_error(it.path, reason, now)
                summary.errors += 1
        text_index.refresh(store)  # the writer keeps the text index current; searches only read it
    summary.embedded += len(batch)
    n = len(batch) + len(failed)
    batch.clear()
    failed.clear()
    return n
