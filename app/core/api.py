"""One open library: the store, the embedder (opened lazily, once), the search engine and the jobs.

Both front ends drive Fovea only through `Library`; settings (thresholds, opt-ins) arrive as
arguments, never read from disk here. Dependencies are injected, as in rclip's `RClip(model, database)`,
so tests hand in a small embedder. Each thread gets its own SQLite connection (`store`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.backends import Embedder, open_embedder
from app.core.backends.serialized import SerializedEmbedder
from app.core.contracts import (
    NO_FILTERS,
    Filters,
    ImageDetails,
    JobKind,
    LibrarySummary,
    StatusReport,
    TagInfo,
    TagSettings,
    ViewCounts,
)
from app.core.errors import FoveaError, UsageError
from app.core.jobs import Job, StopFn, as_job
from app.core.library_jobs import LibraryJobs
from app.core.model_registry import resolve_model
from app.core.query import split_query_line
from app.core.runtime import runtime_info
from app.core.store import ImageRecord, Store

if TYPE_CHECKING:
    from app.core.duplicates import DuplicateGroup
    from app.core.exact_index import ExactPath
    from app.core.search import SearchEngine, SearchResult
    from app.core.tag_store import ReviewItem, TagCounts, TagRow


class EmptyLibraryError(FoveaError):
    """A library with nothing to search (no images, or none indexed with the current model)."""


class Library(LibraryJobs):
    def __init__(
        self,
        db: Path | str,
        model: str | None = None,
        backend: str = "auto",
        embedder: Embedder | None = None,
        read_only: bool = False,
        exact_path: bool = False,
    ) -> None:
        self.db = Path(db)
        self.read_only = read_only  # browse and search only: SQLite refuses every write
        # A long-lived front end (the window) may move its searches to the exact float16 path on a GPU
        # (app.core.exact_index); a one-query CLI process never builds that copy.
        self.exact_path = exact_path
        self._local = threading.local()
        self._stores: list[Store] = []
        self._stores_lock = threading.Lock()
        first = self.store  # open (and migrate) now, so a broken database fails here and not in a worker
        # The copy a schema upgrade made before changing the file (Store.backup), for the front ends to show.
        self.upgrade_backup, self.upgraded_from = first.backup, first.upgraded_from
        self.model, self.backend = model, backend
        self._embedder = SerializedEmbedder(embedder) if embedder is not None else None
        self._engine: SearchEngine | None = None
        self._lock = threading.Lock()  # model loading and the engine are shared by worker threads
        self._search_lock = threading.Lock()  # the engine's in-memory index is not thread-safe
        self.indexing: set[str] = set()  # roots an index job is working on (shown as 'indexing')

    # ---- connections ---------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """This thread's connection: the GUI's read worker, writer and job thread each get one."""
        st = getattr(self._local, "store", None)
        if st is None:
            st = self._local.store = Store(self.db, read_only=self.read_only)
            with self._stores_lock:
                self._stores.append(st)
        return st

    def upgrade_note(self) -> str:
        """What the upgrade did and how to go back (empty when this open upgraded nothing)."""
        if self.upgrade_backup is None:
            return ""
        return (
            f"upgraded the library from schema v{self.upgraded_from}; the file as it was is kept at "
            f"{self.upgrade_backup} (to go back: quit Fovea, then copy that file over {self.db})"
        )

    def close(self) -> None:
        with self._stores_lock:
            for st in self._stores:
                st.close()
            self._stores.clear()
        self._local = threading.local()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the model and the engine ----------------------------------------------------------------
    @property
    def model_loaded(self) -> bool:
        """True once the embedder is open; the GUI loads it in a worker and never waits on the lock."""
        return self._embedder is not None

    @property
    def model_dir(self) -> Path:
        return Path(resolve_model(self.model))

    def embedder(self) -> Embedder:
        """The embedder, opened on first use (seconds for a real model: call it from a worker thread)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = SerializedEmbedder(load_embedder(self.model, self.backend))
            return self._embedder

    def require_images(self) -> None:
        """Raise EmptyLibraryError when nothing is indexed with this model (a search would find nothing)."""
        model_id = self.embedder().model_id
        if self.store.embedded_count(model_id) == 0:
            n = sum(self.store.status_counts().values())
            what = "has no images yet" if n == 0 else f"has no images indexed with model {model_id} yet"
            raise EmptyLibraryError(f"library {self.db} {what}: run `fovea index FOLDER` to add photos")

    def demo_notice_needed(self, folders: Sequence[Path] = (), roots: Sequence[Path] | None = None) -> bool:
        """The demo model is active on a library (or `folders` about to join it) holding more than demo
        scenes: its results there mean nothing, and the front ends say so (app.core.demo).
        `roots`: the library folders when the caller has them at hand (else they are read)."""
        from app.core.demo import needs_demo_notice

        emb = self._embedder  # no lock: the window asks from its thread and must not wait for a load
        folder = emb.folder if emb is not None else self.model_dir
        if roots is None:
            roots = [p for _, p, _ in self.store.roots()]
        return folder is not None and needs_demo_notice(folder, [*roots, *map(Path, folders)])

    def set_model(self, model: str | None, backend: str = "auto") -> None:
        """Switch models; the next use opens the new one (embeddings are per model, never mixed)."""
        with self._lock:
            self.model, self.backend = model, backend
            self._embedder = self._engine = None
        from mlx_models.device import release_cache

        release_cache()  # the old model's buffers sat in MLX's cache, not freed to the system

    def engine(self) -> SearchEngine:
        from app.core.search import SearchEngine

        emb = self.embedder()
        with self._lock:
            if self._engine is None:
                # SQLite connections belong to one thread: the engine reads through its own connection.
                exact = self._exact_path(emb) if self.exact_path else None
                self._engine = SearchEngine(Store(self.db, read_only=self.read_only), emb, exact=exact)
            return self._engine

    def _exact_path(self, emb: Embedder) -> ExactPath:
        from app.core.exact_index import ExactPath

        db, model_id = self.db, emb.model_id

        def load(upto_rowid: int):  # on the background thread: its own connection
            with Store(db, read_only=True) as store:
                return store.f16_rows(model_id, upto_rowid)

        return ExactPath(emb.dim, load)

    # ---- libraries ---------------------------------------------------------------------------------
    def add_root(self, folder: str | Path) -> None:
        """Register a folder; one inside (or around) an existing library joins it (app.core.roots)."""
        from app.core.roots import add_root

        add_root(self.store, Path(folder).resolve(), time.time())

    def remove_root(self, folder: str | Path) -> None:
        """Forget a library (its rows and decisions, except what another library covers); photos are never touched."""
        from app.core import text_index
        from app.core.roots import remove_root

        with self.store.transaction():
            remove_root(self.store, Path(folder))
            text_index.refresh(self.store)

    def libraries(self) -> list[LibrarySummary]:
        out = []
        for path, state, count, errors in self.store.root_summaries():
            busy = str(path) in self.indexing and state != "offline"
            out.append(LibrarySummary(path, "indexing" if busy else state, count, errors))
        return out

    def view_counts(self) -> ViewCounts:
        return ViewCounts(*self.store.view_counts())

    def errors(self, limit: int | None = None) -> list[tuple[Path, str, float]]:
        """Recorded per-file errors, newest first: (path, reason, time)."""
        return self.store.errors(limit=limit)

    def tag_counts(self) -> TagCounts:
        from app.core.tag_store import tag_counts

        return tag_counts(self.store)

    def status(self) -> StatusReport:
        st = self.store
        return StatusReport(
            db=self.db,
            by_status=st.status_counts(),
            errors=tuple(st.errors()),
            roots=tuple((p, s) for _, p, s in st.roots()),
            models=tuple((m, int(n)) for m, n in st.embedding_counts()),
            model=str(resolve_model(self.model)),
            tags=self.tag_counts().to_json(),
            runtime=runtime_info(),
        )

    # ---- browsing and details --------------------------------------------------------------------
    def browse(
        self, view: str, folder: str | None = None, tag: str | None = None, limit: int = 200_000
    ) -> list[tuple[int, str]]:
        """(image id, path) for a sidebar view ('all', 'review', 'duplicates'), newest capture first."""
        if view == "review":
            return [(r.image_id, str(r.path)) for r in self.review_queue(limit)]
        if view == "duplicates":
            return [(i, str(p)) for g in self.duplicates() for i, p in zip(g.image_ids, g.paths, strict=True)]
        return self.store.browse_ids(folder, tag, limit)

    def image_records(self, image_ids: Sequence[int]) -> list[ImageRecord]:
        """Path, file size, dimensions, date and library folder of images, in the order given."""
        return self.store.image_info(image_ids)

    def forget_images(self, image_ids: Sequence[int]) -> None:
        """Drop images from the library (after the GUI moved them to the Trash); files are not touched."""
        self.store.forget_images(image_ids)

    def image_details(self, image_id: int) -> ImageDetails | None:
        """Path, metadata, tags and caption of one image (indexed reads only), or None if it is gone."""
        found = self.store.image_info([image_id])
        if not found:
            return None
        rec = found[0]
        rows = self.store.image_tags(image_id)
        unknown = self.unknown_labels({lb for lb, _, _ in rows})
        tags = tuple(TagInfo(lb, s, st, unknown.get(lb)) for lb, s, st in rows)
        caption = self.store.latest_caption(image_id)
        return ImageDetails(
            image_id, rec.path, rec.width, rec.height, rec.taken_at, rec.camera, tags, caption
        )

    # ---- tags --------------------------------------------------------------------------------------
    def decide_tag(self, image: int | str | Path, label: str, status: str) -> TagRow:
        """Confirm or reject `label` on an image (a library id or path)."""
        from app.core.tag_store import set_decision

        if isinstance(image, int):
            found = self.store.image_info([image])
            if not found:
                raise UsageError(f"image id {image} is not in the library")
            image = found[0].path
        return set_decision(self.store, Path(image).expanduser(), label, status)

    def review_queue(self, limit: int | None = None) -> list[ReviewItem]:
        from app.core.tag_store import review_queue

        return review_queue(self.store, limit=limit)

    def list_tags(self, status: str | None = None, label: str | None = None) -> list[TagRow]:
        from app.core.tag_store import list_tags

        return list_tags(self.store, status, label)

    def vocabulary_path(self, labels_file: str | Path | None = None) -> Path:
        """`labels_file`, else the colour/shape vocabulary for the demo model, else the everyday one."""
        if labels_file is not None:
            p = Path(labels_file).expanduser()
            if not p.is_file():
                raise UsageError(f"{p}: no such vocabulary file")
            return p
        from app.core.tag_vocab import vocabulary_for_model

        return vocabulary_for_model(resolve_model(self.model))

    def vocabulary(self, labels_file: str | Path | None = None):
        """The tag vocabulary `tag_job` would use (see `vocabulary_path`)."""
        from app.core.tag_vocab import load_vocabulary

        return load_vocabulary(self.vocabulary_path(labels_file))

    def unknown_labels(self, labels) -> dict[str, str]:
        """label -> reason, for labels holding words the model does not know (no weights are loaded)."""
        from app.core.vocabulary import model_vocabulary, unknown_labels

        emb = self._embedder
        try:  # the tokenizer is read from the model folder: weights stay unloaded for a review
            folder = emb.folder if emb is not None else self.model_dir
        except UsageError:
            return {}  # no such model: reviewing needs none, so there is nothing to check against
        return unknown_labels(model_vocabulary(folder), sorted(labels)) if folder is not None else {}

    def calibrate(self, settings: TagSettings, labels_file: str | Path | None = None):
        from app.core.calibration import calibrate
        from app.core.tag_vocab import load_vocabulary

        vocab = load_vocabulary(self.vocabulary_path(labels_file))
        return calibrate(
            self.store, self.embedder(), vocab, min_score=settings.min_score, min_margin=settings.min_margin
        )

    # ---- search ------------------------------------------------------------------------------------
    def search(
        self,
        query: str | Sequence[str],
        filters: Filters = NO_FILTERS,
        k: int = 200,
        dense_only: bool = False,
    ) -> SearchResult:
        """Hits for a query line (split into rclip-style terms, shell-like quoting) or a list of lines."""
        from app.core.hybrid import hybrid_search

        if k < 1:
            raise UsageError("-k must be at least 1")
        lines = [query] if isinstance(query, str) else list(query)
        terms = [t for line in lines for t in split_query_line(line)]
        engine = self.engine()
        with self._search_lock:  # captions, when the library has them, join the ranking (RRF)
            result = hybrid_search(engine, self.store, terms, k, dense_only=dense_only, filters=filters)
        return self._with_tags(result)

    def similar(self, image: int | str | Path, filters: Filters = NO_FILTERS, k: int = 200) -> SearchResult:
        if k < 1:
            raise UsageError("-k must be at least 1")
        engine = self.engine()
        with self._search_lock:
            result = engine.similar(image, k=k, filters=filters)
        return self._with_tags(result)

    def explain_job(
        self, image: str | Path, query: str | Sequence[str], should_stop: StopFn | None = None
    ) -> Job:
        """Occlusion map of where `image` matches the query (terms as for `search`); returns an
        `Explanation`, or None when stopped. Image terms use the library's stored vector, as search does."""
        from app.core.decode import open_image
        from app.core.explain import explain
        from app.core.query import parse_query

        lines = [query] if isinstance(query, str) else list(query)
        terms = parse_query([t for line in lines for t in split_query_line(line)])
        photo = open_image(Path(image)).image  # a broken file raises DecodeError naming it
        engine = self.engine()
        with self._search_lock:
            vec = engine.query_vector(terms)
        return (
            yield from as_job(JobKind.EXPLAIN, explain(engine.embedder, photo, vec, should_stop=should_stop))
        )

    def _with_tags(self, result: SearchResult) -> SearchResult:
        """The result with every hit carrying its applied tags."""
        tags = self.store.applied_tags([h.image_id for h in result.hits])
        hits = [dataclasses.replace(h, tags=tuple(tags.get(h.image_id, ()))) for h in result.hits]
        return dataclasses.replace(result, hits=hits)

    def duplicates(self, threshold: float = 0.95) -> list[DuplicateGroup]:
        from app.core.duplicates import find_duplicates

        if not 0.0 < threshold <= 1.0:
            raise UsageError("--threshold must be in (0, 1]")
        return find_duplicates(self.store, self.embedder().model_id, threshold)


def load_embedder(model: str | None, backend: str = "auto") -> Embedder:
    """The embedder for a model name, folder or None (the default model), without a library."""
    return open_embedder(resolve_model(model), backend)
