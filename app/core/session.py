"""One open library: the store, the embedder (loaded lazily, once) and the search engine.

The GUI and the demo drive Fovea through this object; dependencies are injected, as in rclip's
`RClip(model, database)`, so tests can hand in a small embedder.
"""

from __future__ import annotations

import re
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app.core.backends import Embedder, open_embedder
from app.core.model_registry import resolve_model
from app.core.store import Store, path_to_text, text_to_path

StopFn = Callable[[], bool]


class Session:
    def __init__(
        self,
        db: Path | str,
        model: str | None = None,
        backend: str = "auto",
        embedder: Embedder | None = None,
    ) -> None:
        self.db = db
        self._local = threading.local()
        self._stores: list[Store] = []
        _ = self.store  # open (and migrate) now, so a broken database fails here and not in a worker
        self.model, self.backend = model, backend
        self._embedder = _Serialized(embedder) if embedder is not None else None
        self._engine = None
        self._lock = threading.Lock()  # model loading and the engine are shared by worker threads
        self._search_lock = threading.Lock()  # the engine's in-memory index is not thread-safe
        self.indexing: set[str] = set()  # roots an index job is working on (shown as 'indexing')

    @property
    def store(self) -> Store:
        """This thread's connection: the GUI thread, the read worker and the write worker each get one."""
        st = getattr(self._local, "store", None)
        if st is None:
            st = self._local.store = Store(self.db)
            self._stores.append(st)
        return st

    def close(self) -> None:
        for st in self._stores:
            st.close()
        self._stores.clear()

    # ---- the model and the engine ------------------------------------------------------------
    @property
    def model_loaded(self) -> bool:
        """True once the embedder is open; the GUI loads it in a worker and never waits on the lock."""
        return self._embedder is not None

    def embedder(self) -> Embedder:
        """The embedder, opened on first use (seconds for a real model: call it from a worker thread)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = _Serialized(open_embedder(resolve_model(self.model), self.backend))
            return self._embedder

    def set_model(self, model: str | None, backend: str = "auto") -> None:
        """Switch models; the next use opens the new one (embeddings are per model, never mixed)."""
        with self._lock:
            self.model, self.backend = model, backend
            self._embedder = self._engine = None

    def engine(self):
        from app.core.search import SearchEngine

        emb = self.embedder()
        with self._lock:
            if self._engine is None:
                self._engine = SearchEngine(self._reader(), emb)
            return self._engine

    def _reader(self) -> Store:
        # SQLite connections belong to one thread: the engine reads through its own connection.
        return Store(self.db)

    # ---- libraries ---------------------------------------------------------------------------
    def add_library(self, folder: str | Path) -> None:
        with self.store.transaction():
            self.store.add_root(Path(folder).resolve(), time.time())

    def remove_library(self, folder: str | Path) -> None:
        """Forget a library (its rows and decisions); the photos on disk are never touched."""
        text = path_to_text(Path(folder))
        with self.store.transaction():
            c = self.store.conn
            row = c.execute("SELECT id FROM roots WHERE path = ?", (text,)).fetchone()
            if row is None:
                return
            ids = "SELECT id FROM images WHERE root_id = ?"
            for table in ("tags", "embeddings", "captions"):
                c.execute(f"DELETE FROM {table} WHERE image_id IN ({ids})", (row[0],))
            c.execute("DELETE FROM images WHERE root_id = ?", (row[0],))
            c.execute("DELETE FROM roots WHERE id = ?", (row[0],))

    def libraries(self) -> list[dict[str, Any]]:
        rows = self.store.conn.execute(
            "SELECT r.path, r.state, sum(i.status = 'ok'), sum(i.status = 'error') FROM roots r "
            "LEFT JOIN images i ON i.root_id = r.id GROUP BY r.id ORDER BY r.id"
        ).fetchall()
        out = []
        for p, s, n, e in rows:
            path = str(text_to_path(p))
            state = "indexing" if path in self.indexing and s != "offline" else s
            out.append({"path": path, "state": state, "count": int(n or 0), "errors": int(e or 0)})
        return out

    def index_job(self, roots: list[Path] | None, should_stop: StopFn | None = None) -> Iterator[Any]:
        from app.core.indexer import index

        store = Store(self.db)  # the job runs in a worker thread: its own connection
        targets = (
            [Path(r).resolve() for r in roots] if roots is not None else [p for _, p, _ in store.roots()]
        )
        names = {str(t) for t in targets}
        self.indexing |= names
        try:
            # The engine picks the new rows up on its next query (SearchEngine.refresh per search).
            return (yield from index(store, self.embedder(), targets, should_stop=should_stop))
        finally:
            self.indexing -= names
            store.close()

    def tag_job(self, should_stop: StopFn | None = None, labels_file: Path | None = None) -> Iterator[Any]:
        from app.core.settings import Settings
        from app.core.tag_vocab import load_vocabulary, vocabulary_for_model
        from app.core.tagging import tag_library

        s = Settings.load()
        store = Store(self.db)
        try:
            for p in tag_library(
                store,
                self.embedder(),
                load_vocabulary(labels_file or vocabulary_for_model(resolve_model(self.model))),
                min_score=s.min_score,
                min_margin=s.min_margin,
            ):
                yield p
                if should_stop and should_stop():
                    break  # each block is committed as it is written
        finally:
            store.close()

    def caption_job(
        self, should_stop: StopFn | None = None, caption_model: str | None = None
    ) -> Iterator[Any]:
        """Caption the opted-in libraries (all of them when none opted in yet); resumable."""
        from app.core.captions import caption_library, caption_model_dir, captioning_roots, set_captioning
        from app.core.captions_backend import open_captioner

        captioner = open_captioner(caption_model_dir(caption_model), self.backend)
        store = Store(self.db)
        try:
            if not captioning_roots(store):
                for _, root, _ in store.roots():
                    set_captioning(store, root, True)
            yield from caption_library(store, captioner, should_stop=should_stop)
        finally:
            store.close()

    # ---- browsing ------------------------------------------------------------------------------
    def browse(
        self, view: str, folder: str | None = None, tag: str | None = None, limit: int = 200_000
    ) -> list[tuple[int, str]]:
        """(image id, path) for a sidebar view, newest capture first."""
        if view == "review":
            from app.core.tag_store import review_queue

            return [(r.image_id, str(r.path)) for r in review_queue(self.store, limit=limit)]
        if view == "duplicates":
            return [
                (i, str(p))
                for g in self.duplicate_groups()
                for i, p in zip(g.image_ids, g.paths, strict=True)
            ]
        sql, args = "SELECT i.id, i.path FROM images i WHERE i.status = 'ok'", []
        if folder:
            prefix = path_to_text(Path(folder)).rstrip("/") + "/"
            sql += " AND substr(i.path, 1, ?) = ?"
            args += [len(prefix), prefix]
        if tag:
            sql += (
                " AND i.id IN (SELECT image_id FROM tags WHERE label = ? AND status IN ('auto', 'confirmed'))"
            )
            args.append(tag)
        sql += " ORDER BY i.taken_at DESC, i.path LIMIT ?"
        args.append(limit)
        # Path objects cost ~10 us each: only escaped (non-UTF-8) names need decoding.
        return [
            (i, p if "\ufffd" not in p else str(text_to_path(p)))
            for i, p in self.store.conn.execute(sql, args)
        ]

    def view_counts(self) -> dict[str, int]:
        c = self.store.conn.execute
        return {
            "all": c("SELECT count(*) FROM images WHERE status = 'ok'").fetchone()[0],
            "review": c("SELECT count(DISTINCT image_id) FROM tags WHERE status = 'review'").fetchone()[0],
            "errors": c("SELECT count(*) FROM images WHERE status = 'error'").fetchone()[0],
        }

    def errors(self) -> list[tuple[Path, str, float]]:
        return self.store.errors(limit=10_000)

    def tag_counts(self) -> dict[str, int]:
        from app.core.tag_store import tag_counts

        return tag_counts(self.store).by_label

    def duplicate_groups(self):
        from app.core.duplicates import find_duplicates

        return find_duplicates(self.store, self.embedder().model_id)

    def image_details(self, image_id: int) -> dict[str, Any] | None:
        """Path, metadata, tags and caption of one image (indexed reads only), or None if it is gone."""
        found = self.store.image_info([image_id])
        if not found:
            return None
        rec = found[0]
        tags = [
            {"label": lb, "score": s, "status": st}
            for lb, s, st in self.store.conn.execute(
                "SELECT label, score, status FROM tags WHERE image_id = ? ORDER BY score DESC", (image_id,)
            )
        ]
        cap = self.store.conn.execute(
            "SELECT text FROM captions WHERE image_id = ? ORDER BY created_at DESC LIMIT 1", (image_id,)
        ).fetchone()
        meta = {
            "size": f"{rec.width} × {rec.height}" if rec.width else None,  # noqa: RUF001
            "taken": rec.taken_at,
            "camera": rec.camera,
        }
        return {"meta": meta, "tags": tags, "caption": cap[0] if cap else None, "path": str(rec.path)}

    def set_tag_decision(self, image_id: int, label: str, status: str) -> None:
        from app.core.tag_store import set_decision

        set_decision(self.store, self.store.image_info([image_id])[0].path, label, status)

    # ---- search --------------------------------------------------------------------------------
    def search_text(self, text: str, k: int = 200):
        """Search with a line typed in the search field (rclip-style terms, shell-like quoting)."""
        from app.core.hybrid import hybrid_search

        terms = split_query_line(text)
        engine = self.engine()
        with self._search_lock:  # captions, when the library has them, join the ranking (RRF)
            return hybrid_search(engine, self.store, terms, k)

    def similar(self, image: int | str, k: int = 200):
        engine = self.engine()
        with self._search_lock:
            return engine.similar(image, k=k)


_STARTS_TERM = re.compile(r"^(?:[+-]|[+-]?(?:\d+(?:\.\d*)?|\.\d+):)")


def split_query_line(text: str) -> list[str]:
    """A search-field line -> rclip-style terms: `red circle -blue sky 2:"a star"` -> ["red circle",
    "-blue sky", "2:a star"]. Plain words join the term before them; a +, - or weight prefix, a quoted
    phrase or an existing file starts a new term."""
    try:
        lex = shlex.shlex(text, posix=True, punctuation_chars=False)
        lex.whitespace_split = True
        tokens = list(lex)
    except ValueError:  # an unbalanced quote while typing
        tokens = text.replace('"', " ").replace("'", " ").split()
    terms: list[str] = []
    joinable = False  # may the next plain word extend the last term?
    for tok in tokens:
        is_file = Path(tok).expanduser().is_file() if len(tok) < 4096 else False
        if terms and joinable and not _STARTS_TERM.match(tok) and not is_file:
            terms[-1] += " " + tok
            continue
        terms.append(tok)
        joinable = not is_file and " " not in tok  # a quoted phrase is a whole term
    return terms


class _Serialized:
    """An embedder whose calls run one at a time: the index job and a search share one model, and
    backends (MLX streams, torch modules) are not promised to be safe under concurrent calls."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # model_id, dim, logit_scale, preprocess (pure), image_size...

    def embed_pixels(self, pixels):
        with self._lock:
            return self._inner.embed_pixels(pixels)

    def embed_images(self, images):
        with self._lock:
            return self._inner.embed_images(images)

    def embed_texts(self, texts):
        with self._lock:
            return self._inner.embed_texts(texts)
