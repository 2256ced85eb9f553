"""The Library's long jobs: index, tag, demo, caption, as generators of JobProgress (a mixin of `Library`).

The GUI runs them in its job worker, the CLI draws bars from them; each returns the job's result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.backends import Embedder
from app.core.contracts import JobKind, JobProgress, TagSettings
from app.core.errors import UsageError
from app.core.index_lock import WAITING, IndexLock
from app.core.jobs import Job, StopFn, as_job
from app.core.store import Store

if TYPE_CHECKING:  # the engine pulls in the decode pool, which a search never needs
    from app.core.embed_engine import EmbedEngine


class LibraryJobs:
    db: Path
    backend: str
    indexing: set[str]
    embedder: Callable[[], Embedder]
    vocabulary_path: Callable[..., Path]

    def index_job(
        self,
        roots: Sequence[str | Path] | None = None,
        should_stop: StopFn | None = None,
        batch_size: int = 32,
        download_icloud: bool = False,
        engine: EmbedEngine | None = None,
    ) -> Job:
        """Add and (re)index `roots` (None: every library); returns the IndexSummary.

        `download_icloud`: read iCloud files that are not on this disk (reading downloads them).
        `engine`: decode and embed elsewhere (app.core.cluster.RayEngine); this process still stores."""
        from app.core.indexer import index, prestart_decoders

        store = Store(self.db)  # the job may run in a worker thread: its own connection
        targets = (
            [Path(r).resolve() for r in roots] if roots is not None else [p for _, p, _ in store.roots()]
        )
        names = {str(t) for t in targets}
        lock = IndexLock(self.db)  # one indexer per library, across processes (app.core.index_lock)
        try:
            told = False
            while not lock.try_acquire():
                if should_stop is not None and should_stop():
                    return None
                if not told:  # said once; the other indexer's work is then found done, not repeated
                    yield JobProgress(0, 0, lock.busy_message() + WAITING)
                    told = True
                time.sleep(0.25)
            self.indexing |= names
            if engine is None:  # their start-up (about a second on a small machine) overlaps the model's load
                prestart_decoders()
            # The engine picks the new rows up on its next query (SearchEngine.refresh per search).
            gen = index(
                store,
                self.embedder(),
                targets,
                batch_size=batch_size,
                should_stop=should_stop,
                download_icloud=download_icloud,
                engine=engine,
            )
            return (yield from as_job(JobKind.INDEX, gen))
        finally:
            self.indexing -= names
            lock.release()
            store.close()

    def tag_job(
        self, settings: TagSettings, labels_file: str | Path | None = None, should_stop: StopFn | None = None
    ) -> Job:
        """Tag every indexed image with the vocabulary (see `vocabulary_path`); returns the TagSummary."""
        from app.core.tag_vocab import load_vocabulary
        from app.core.tagging import tag_library

        vocab = load_vocabulary(self.vocabulary_path(labels_file))
        store = Store(self.db)
        try:
            emb = self.embedder()
            return (
                yield from tag_library(
                    store,
                    emb,
                    vocab,
                    min_score=settings.min_score,
                    min_margin=settings.min_margin,
                    should_stop=should_stop,  # each block is committed as it is written
                )
            )
        finally:
            store.close()

    def demo_job(self, settings: TagSettings, should_stop: StopFn | None = None) -> Job:
        """Write the demo library (once), add and index it, and tag it with the demo vocabulary."""
        from app.core.demo import demo_job

        return (yield from demo_job(self, settings, should_stop))

    def caption_job(
        self, caption_model: str | None = None, limit: int | None = None, should_stop: StopFn | None = None
    ) -> Job:
        """Caption every library (running it is the opt-in, kept for later runs); resumable.

        Returns the CaptionSummary, or None when there is no library yet.
        """
        from app.core.captions import caption_library, caption_model_dir, captioning_roots, set_captioning
        from app.core.captions_backend import open_captioner

        if limit is not None and limit < 0:
            raise UsageError("--limit must not be negative")
        store = Store(self.db)
        try:
            roots = [p for _, p, _ in store.roots()]
            if not roots:
                return None
            opted = set(captioning_roots(store))
            for root in roots:
                if root not in opted:
                    set_captioning(store, root, True)
            captioner = open_captioner(caption_model_dir(caption_model), self.backend)
            gen = caption_library(store, captioner, limit=limit, should_stop=should_stop)
            return (yield from as_job(JobKind.CAPTION, gen))
        finally:
            store.close()
