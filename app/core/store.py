"""The SQLite store: schema, stepwise migrations, transactions and the reads search needs.

One file per library set, in WAL mode so the GUI can read while an indexer writes. Paths are
stored as text; names that are not valid UTF-8 are escaped reversibly (see `path_to_text`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core import store_safety
from app.core.errors import FoveaError
from app.core.faults import KEPT_INDEX, DiskFullError, is_disk_full, need_for
from app.core.store_captions import StoreCaptions
from app.core.store_index import StoreIndex
from app.core.store_paths import path_to_text, text_to_path  # noqa: F401 - re-exported
from app.core.store_reads import ImageRecord, StoreReads  # noqa: F401 - ImageRecord re-exported
from app.core.store_roots import StoreRoots
from app.core.store_safety import (  # noqa: F401 - re-exported: callers import them from the store
    BACKUPS_KEPT,
    LibraryBusyError,
    backup_beside,
    backups_of,
    damage_hint,
    is_busy,
    journal_for,
)
from app.core.store_tags import StoreTags
from app.core.store_text import StoreText
from app.core.store_views import StoreViews

Step = str | Callable[[sqlite3.Connection], None]

# Each entry upgrades the schema by one version; append, never edit a released step.
MIGRATIONS: list[list[Step]] = [
    [  # 1: files and roots
        """CREATE TABLE roots (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL,
               state TEXT NOT NULL DEFAULT 'online', added_at REAL)""",
        """CREATE TABLE images (id INTEGER PRIMARY KEY, root_id INTEGER, path TEXT UNIQUE NOT NULL,
               size INTEGER, mtime_ns INTEGER, content_hash TEXT, width INTEGER, height INTEGER,
               taken_at TEXT, status TEXT NOT NULL DEFAULT 'pending', error TEXT, indexed_at REAL)""",
        "CREATE TABLE errors (id INTEGER PRIMARY KEY, path TEXT NOT NULL, reason TEXT, time REAL)",
    ],
    [  # 2: camera model, embeddings keyed by model, tags with user decisions, captions
        "ALTER TABLE images ADD COLUMN camera TEXT",
        """CREATE TABLE embeddings (image_id INTEGER NOT NULL, model_id TEXT NOT NULL, vec_i8 BLOB NOT NULL,
               scale REAL NOT NULL, vec_f16 BLOB NOT NULL, PRIMARY KEY (image_id, model_id))""",
        """CREATE TABLE tags (image_id INTEGER NOT NULL, label TEXT NOT NULL, score REAL, status TEXT NOT NULL,
               model_id TEXT, updated_at REAL, PRIMARY KEY (image_id, label))""",
        """CREATE TABLE captions (image_id INTEGER NOT NULL, model_id TEXT NOT NULL, text TEXT,
               created_at REAL, PRIMARY KEY (image_id, model_id))""",
        "CREATE INDEX images_root ON images(root_id)",
        "CREATE INDEX images_hash ON images(size, content_hash)",
        "CREATE INDEX images_status ON images(status)",
        "CREATE INDEX embeddings_model ON embeddings(model_id)",
        "CREATE INDEX tags_label ON tags(label, status)",
        "CREATE INDEX errors_path ON errors(path)",
    ],
    [  # 3: caption opt-in per library; full-text index over captions, tags and file names (app.core.text_index)
        "CREATE TABLE caption_roots (root_id INTEGER PRIMARY KEY, enabled_at REAL)",
        """CREATE VIRTUAL TABLE text_fts USING fts5(caption, tags, name,
               tokenize = 'porter unicode61 remove_diacritics 2')""",
        # Triggers only mark images dirty (cheap even for bulk tag writes); text_index.refresh rebuilds them.
        # No OR IGNORE inside: an outer statement's conflict clause (an upsert, OR REPLACE) would override it.
        "CREATE TABLE text_dirty (image_id INTEGER PRIMARY KEY)",
        *(
            f"""CREATE TRIGGER {table}_text_{op.split()[0].lower()} AFTER {op} ON {table} BEGIN
                INSERT INTO text_dirty SELECT {row}.{col}
                WHERE NOT EXISTS (SELECT 1 FROM text_dirty WHERE image_id = {row}.{col}); END"""
            for table, col in (("captions", "image_id"), ("tags", "image_id"), ("images", "id"))
            for op, row in (
                ("INSERT", "NEW"),
                ("UPDATE OF path" if table == "images" else "UPDATE", "NEW"),  # status churn needs no refresh
                ("DELETE", "OLD"),
            )
        ),
        "INSERT INTO text_dirty SELECT id FROM images",
    ],
    [  # 4: a counter bumped by every change a persisted search index cannot replay by rowid (app.core.index_file)
        "CREATE TABLE vectors_generation (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)",
        # A random start: a fresh or salvaged store never matches a file written for another one.
        "INSERT INTO vectors_generation VALUES (0, abs(random() % 1000000000000))",
        # New embeddings get new rowids and are replayed; deletions and images leaving 'ok' are not.
        """CREATE TRIGGER embeddings_generation AFTER DELETE ON embeddings BEGIN
               UPDATE vectors_generation SET value = value + 1 WHERE id = 0; END""",
        """CREATE TRIGGER images_generation_status AFTER UPDATE OF status ON images
               WHEN OLD.status = 'ok' AND NEW.status != 'ok' BEGIN
               UPDATE vectors_generation SET value = value + 1 WHERE id = 0; END""",
        """CREATE TRIGGER images_generation_delete AFTER DELETE ON images WHEN OLD.status = 'ok' BEGIN
               UPDATE vectors_generation SET value = value + 1 WHERE id = 0; END""",
    ],
    [  # 5: per-label thresholds fitted by calibration (app.core.calibration), per model
        # IF NOT EXISTS: older files may hold this very table, created outside the migrations before v5.
        """CREATE TABLE IF NOT EXISTS tag_thresholds (model_id TEXT NOT NULL, label TEXT NOT NULL,
               min_score REAL NOT NULL, min_margin REAL NOT NULL, n_examples INTEGER, updated_at REAL,
               PRIMARY KEY (model_id, label))""",
    ],
    [  # 6: what a decoder said about a file (warnings, libtiff/libheif/LibRaw messages), kept off the terminal
        "ALTER TABLE images ADD COLUMN decode_notes TEXT",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(FoveaError):
    """A database that cannot be opened or upgraded; `kind` says why, so a front end can offer a way out:
    'folder', 'not-database', 'corrupt', 'read-only', 'newer-schema' or 'unopenable'."""

    def __init__(self, message: str, kind: str = "unopenable") -> None:
        super().__init__(message)
        self.kind = kind


def _error_kind(path: Path, e: sqlite3.DatabaseError) -> str:
    text = str(e).lower()
    if path.is_dir():
        return "folder"
    if "not a database" in text:
        return "not-database"
    if "malformed" in text or "corrupt" in text:
        return "corrupt"
    if "readonly" in text or "read-only" in text:
        return "read-only"
    return "unopenable"


def writable(path: Path) -> bool:
    """Whether a library file may be written: its write bits (honoured even for root, who could ignore
    them) and the folder, where SQLite keeps its -wal and -shm files."""
    if not path.exists():
        return os.access(path.parent, os.W_OK)
    return bool(path.stat().st_mode & 0o222) and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


class NoLibraryError(StoreError):
    """A read-only open of a library file that does not exist (reads never create one)."""


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the steps from the file's `user_version` up to `target`, each version in one transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database schema v{version} is newer than this Fovea (v{SCHEMA_VERSION})", "newer-schema"
        )
    for v in range(version, target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have upgraded the file while we waited for the write lock
            # (two indexers creating one library at once): read the version again under the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] > v:
                conn.execute("COMMIT")
                continue
            for step in MIGRATIONS[v]:
                step(conn) if callable(step) else conn.execute(step)
            conn.execute(f"PRAGMA user_version = {v + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return max(version, target)


def _connect(path: str | Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves so a batch is exactly one transaction.
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=store_safety.BUSY_TIMEOUT_S
    )
    if str(path) != ":memory:":
        if journal_for(path) == "wal":
            _switch_journal(conn, "WAL")
            # WAL + NORMAL survives an application crash; only a power cut can lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
        else:
            # Rollback journal: one writer at a time through the server's file locks; FULL because a
            # network write that returned is not yet on the server's disk.
            _switch_journal(conn, "DELETE")
            conn.execute("PRAGMA synchronous=FULL")
    return conn


def _switch_journal(conn: sqlite3.Connection, mode: str, poll_s: float = 0.05) -> None:
    """PRAGMA journal_mode, retried while another process holds the file: SQLite answers "database is
    locked" at once there, without its busy timeout (two indexers creating one library at once)."""
    deadline = time.monotonic() + store_safety.BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute(f"PRAGMA journal_mode={mode}")
            return
        except sqlite3.OperationalError as e:
            if not is_busy(e) or time.monotonic() >= deadline:
                raise
            time.sleep(poll_s)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    # mode=ro never writes; immutable=1 is the fallback when SQLite cannot even create its -shm file
    # (a read-only folder): the file is then read as a snapshot, without locks. Never creates a file.
    if not path.is_file():
        raise NoLibraryError(f"no library at {path}: run `fovea index FOLDER` to create one")
    for params in ("mode=ro", "mode=ro&immutable=1"):
        try:
            uri = path.resolve().as_uri()
            conn = sqlite3.connect(f"{uri}?{params}", uri=True, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA query_only=1")  # a second guard: SQL that would write is refused
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.DatabaseError as e:
            last = e
    raise StoreError(f"{path}: {last}{damage_hint(last)}", _error_kind(path, last))


class Store(StoreReads, StoreIndex, StoreViews, StoreCaptions, StoreTags, StoreText, StoreRoots):
    """The library database. Writes happen inside `transaction()`; reads may happen anywhere."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        """`read_only`: browse without changes (no migration, no WAL switch, writes refused by SQLite)."""
        self.read_only = read_only
        if str(path) != ":memory:":
            p = Path(path)
            if not read_only:
                p.parent.mkdir(parents=True, exist_ok=True)
                if p.is_file() and not writable(p):
                    raise StoreError(f"{path}: the library file is read-only", "read-only")
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.backup: Path | None = None  # the copy made before a schema upgrade, for the front ends to show
        self.upgraded_from: int | None = None
        if read_only:  # no migration here: a newer schema's tables are read as they are
            self.conn = _connect_read_only(Path(path))
            self._upgrade_for_reading(path)
        try:
            if not read_only:
                self.conn = _connect(path)
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                if 0 < version < SCHEMA_VERSION and str(path) != ":memory:":
                    # Upgrades never risk a library: the old file is copied before the first step runs.
                    self.backup = backup_beside(self.conn, path, f"v{version}")
                    self.upgraded_from = version
                migrate(self.conn)
        except BaseException as e:
            if getattr(self, "conn", None) is not None:
                self.conn.close()
            if not isinstance(e, sqlite3.DatabaseError):
                raise
            if is_disk_full(e):
                raise DiskFullError(path, need_for(path), "the library was not changed") from e
            if is_busy(e):
                raise LibraryBusyError(path) from e
            raise StoreError(f"{path}: {e}{damage_hint(e)}", _error_kind(Path(path), e)) from e
        self._lock = threading.RLock()
        self._depth = 0

    def _upgrade_for_reading(self, path: str | Path) -> None:
        """An existing library with an older schema that can be written is upgraded once (a writing
        open, which keeps a copy of the old file), then read `mode=ro`; otherwise it is read as it is."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION or not writable(Path(path)):
            return
        self.conn.close()
        try:
            writer = Store(path)
        except StoreError:
            self.conn = _connect_read_only(Path(path))  # read what is there
            return
        self.backup, self.upgraded_from = writer.backup, writer.upgraded_from
        writer.close()
        self.conn = _connect_read_only(Path(path))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit; nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")  # waits up to BUSY_TIMEOUT_S for another writer
            except sqlite3.OperationalError as e:
                if is_busy(e):
                    raise LibraryBusyError(self.path) from e
                raise
            self._depth = 1
            try:
                yield self.conn
                self.conn.execute("COMMIT")  # a full disk may refuse the commit itself (the WAL must grow)
            except BaseException as e:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error) and is_disk_full(e):
                    raise DiskFullError(self.path, need_for(self.path), KEPT_INDEX) from e
                raise
            finally:
                self._depth = 0

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]
