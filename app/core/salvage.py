"""`fovea doctor --repair`: salvage a damaged library into a new file, keep the damaged one beside it.

The new file is always a fresh store at the current schema filled row by row, from one of two sources:
the output of the sqlite3 command's `.recover` (SQLite's own page-level recovery; used when the
installed sqlite3 has it), else the damaged file itself, read table by table in rowid order with
damaged stretches skipped. It replaces the library only after it passes SQLite's integrity check;
the damaged file (and its -wal) keeps its bytes under a dated name. The photos are never touched.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.doctor import (
    FOREIGN,
    ORPHAN_EMBEDDINGS,
    check,
    index_files,
    integrity,
    open_readonly,
    stale_index_files,
)
from app.core.errors import FoveaError
from app.core.faults import ensure_free

# Derived tables rebuilt after the copy instead of copied: the full-text index and its shadow tables.
DERIVED = ("text_fts", "text_dirty")
CHUNK = 500
READ_CHUNK = 256
RECOVER_TIMEOUT_S = 3600


class SalvageError(FoveaError):
    """Nothing could be salvaged, or the salvaged copy did not pass the integrity check."""


@dataclass(frozen=True)
class RepairResult:
    db: Path
    method: str  # 'none' (healthy), 'cleanup' (rows removed in place), 'sqlite3 .recover', 'row-by-row'
    kept: dict[str, int]  # rows per table in the repaired library
    removed: dict[str, int] = field(default_factory=dict)  # rows dropped because their parent was gone
    damaged_copy: Path | None = None  # the damaged file, kept under a dated name
    backup: Path | None = None  # the copy made before an in-place cleanup
    skipped_ranges: int = 0  # damaged stretches skipped by the row-by-row reader

    def to_json(self) -> dict:
        return {
            "db": str(self.db),
            "method": self.method,
            "kept": self.kept,
            "removed": self.removed,
            "damaged_copy": str(self.damaged_copy) if self.damaged_copy else None,
            "backup": str(self.backup) if self.backup else None,
            "skipped_ranges": self.skipped_ranges,
        }


def repair(db: str | Path, use_cli: bool = True) -> RepairResult:
    """Bring the library at `db` back to a sound state, keeping every readable row."""
    from app.core.store import Store, backup_beside

    db = Path(db)
    report = check(db)
    if report.damaged:
        result = salvage(db, use_cli)
        # The salvaged store starts a new vectors_generation: every persisted index is stale now.
        stale = index_files(db)
    else:
        result = RepairResult(db, "none", _row_counts(db))
        if report.needs_repair:  # sound file with rows pointing at nothing: remove them, after a copy
            with Store(db) as store:
                backup = backup_beside(store.conn, db, "repair")
                with store.transaction() as conn:
                    removed = remove_foreign(conn)
            result = RepairResult(db, "cleanup", _row_counts(db), removed, backup=backup)
        conn = open_readonly(db)
        try:
            stale = stale_index_files(conn, db)
        finally:
            conn.close()
    for p in stale:  # derived files: the next search rebuilds the index from the store
        p.unlink(missing_ok=True)
    if stale:
        result.removed["stale index files"] = len(stale)
    return result


def salvage(db: Path, use_cli: bool = True) -> RepairResult:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = db.with_name(f"{db.stem}.salvage-{stamp}{db.suffix}")
    damaged_copy = db.with_name(f"{db.stem}.damaged-{stamp}{db.suffix}")
    size = sum(p.stat().st_size for p in _family(db))
    # Room for the copy, and for the .recover dump beside it.
    ensure_free(db.parent, 2 * size + 10_000_000, kept="the library was not changed")
    method, skipped = "row-by-row", 0
    with tempfile.TemporaryDirectory(dir=db.parent, prefix=".fovea-salvage-") as tmp:
        source = _whole_pages_copy(db, Path(tmp) / "damaged.sqlite")
        if use_cli and (recovered := _cli_recover(db, Path(tmp) / "recovered.sqlite")) is not None:
            source, method = recovered, "sqlite3 .recover"
        try:
            skipped, dropped = _copy_into_new(source, work)
        except BaseException:
            _remove_family(work)
            raise
    problems = _verify(work)
    if problems:
        _remove_family(work)
        raise SalvageError(
            f"{db}: the salvaged copy failed the integrity check ({problems[0]}); nothing was changed"
        )
    for src in _family(db):  # the damaged file and its -wal/-shm keep their bytes under the dated name
        os.replace(src, str(damaged_copy) + src.name[len(db.name) :])
    os.replace(work, db)
    return RepairResult(
        db, method, _row_counts(db), dropped, damaged_copy=damaged_copy, skipped_ranges=skipped
    )


def remove_foreign(conn: sqlite3.Connection) -> dict[str, int]:
    """Re-attach images to the root folder holding them, then delete rows whose parent is gone."""
    from app.core.doctor import _tables

    tables = _tables(conn)
    if {"images", "roots"} <= tables:
        for root_id, root in conn.execute("SELECT id, path FROM roots").fetchall():
            prefix = root.rstrip("/") + "/"
            conn.execute(
                """UPDATE images SET root_id = ? WHERE (root_id IS NULL OR root_id NOT IN (SELECT id FROM roots))
                   AND substr(path, 1, ?) = ?""",
                (root_id, len(prefix), prefix),
            )
    removed = {}
    for table, _, where in (FOREIGN[2], FOREIGN[0], FOREIGN[1], ("embeddings", "", ORPHAN_EMBEDDINGS)):
        if table in tables:
            n = conn.execute(f"DELETE FROM {table} WHERE {where}").rowcount
            if n:
                removed[table] = n
    return removed


def _family(db: Path) -> list[Path]:
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def _remove_family(db: Path) -> None:
    for p in _family(db):
        p.unlink()


def _whole_pages_copy(db: Path, out: Path) -> Path:
    """A copy of the damaged file (and its -wal) cut to whole pages: SQLite cannot tell a page whose
    tail was cut off (read back as zeros) from a sound one, and would hand back its rows with zeroed values."""
    with open(db, "rb") as fh:
        head = fh.read(100)
    page = int.from_bytes(head[16:18], "big") if head[:16] == b"SQLite format 3\x00" else 0
    page = 65536 if page == 1 else page
    shutil.copyfile(db, out)
    if page and page & (page - 1) == 0 and page >= 512:
        size = out.stat().st_size
        os.truncate(out, size - size % page)
    if Path(f"{db}-wal").exists():
        shutil.copyfile(f"{db}-wal", f"{out}-wal")
    return out


def _cli_recover(db: Path, out: Path) -> Path | None:
    """SQLite's `.recover` through the sqlite3 command into `out`; None when it is missing or fails
    (builds without the sqlite_dbpage table, such as Debian's, answer 'SQL logic error')."""
    cli = shutil.which("sqlite3")
    if cli is None:
        return None
    dump = out.with_suffix(".sql")
    with open(dump, "wb") as fh:
        r = subprocess.run(
            [cli, "-readonly", str(db), ".recover"],
            stdout=fh,
            stderr=subprocess.PIPE,
            timeout=RECOVER_TIMEOUT_S,
        )
    if r.returncode != 0 or b"error" in r.stderr.lower():
        return None
    with open(dump, "rb") as fh:
        r = subprocess.run([cli, str(out)], stdin=fh, capture_output=True, timeout=RECOVER_TIMEOUT_S)
    dump.unlink()
    if r.returncode != 0 or not out.exists():
        return None
    return out


def _copy_into_new(source: Path, work: Path) -> int:
    """A fresh store at `work` holding every row readable from `source`; returns damaged stretches skipped."""
    from app.core import text_index
    from app.core.store import Store

    src = open_readonly(source)
    # Lets SQLite read a file shorter than its header says (a truncated copy) instead of refusing it whole.
    src.execute("PRAGMA writable_schema = ON")
    try:
        try:
            schema = src.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        except sqlite3.DatabaseError as e:
            raise SalvageError(
                f"{source}: nothing is readable, the file's table of contents is damaged ({e}); "
                "start a new library (your photos are untouched) and keep this file for a specialist"
            ) from e
        skipped, dropped = 0, {}
        with Store(work) as dst:
            have = {r[0] for r in dst.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for name, sql in schema:
                if (
                    name.startswith(("sqlite_", "lost_and_found", *DERIVED))
                    or not sql
                    or "VIRTUAL" in sql.upper()
                ):
                    continue
                if name not in have:  # a table another module created (calibration thresholds, ...)
                    dst.conn.execute(sql)
                cols = [c for c in _columns(src, name) if c in set(_columns(dst.conn, name))]
                marks = ",".join("?" * len(cols))
                insert = f"INSERT OR IGNORE INTO {name} ({','.join(cols)}) VALUES ({marks})"
                rows = _Rows(src, name, cols)
                sound = _embedding_check(cols) if name == "embeddings" else None
                while True:
                    chunk = [r for _, r in zip(range(CHUNK), rows, strict=False)]
                    if not chunk:
                        break
                    if sound is not None:
                        n = len(chunk)
                        chunk = [r for r in chunk if sound(r)]
                        if len(chunk) < n:
                            dropped["embeddings (damaged values)"] = (
                                dropped.get("embeddings (damaged values)", 0) + n - len(chunk)
                            )
                        if not chunk:
                            continue
                    with dst.transaction() as conn:
                        conn.executemany(insert, chunk)
                skipped += rows.skipped
            with dst.transaction() as conn:
                dropped.update(remove_foreign(conn))
            text_index.rebuild(dst)
    finally:
        src.close()
    return skipped, dropped


def _embedding_check(cols: list[str]):
    """A test that a salvaged embedding row is intact: the int8 copy and the float16 copy agree and
    the vector has unit length. A damaged page can parse and still hold zeroed or random bytes."""
    from app.core.vectors import dequantize_int8

    at = {c: i for i, c in enumerate(cols)}
    if not {"vec_i8", "scale", "vec_f16"} <= at.keys():
        return None

    def sound(row: tuple) -> bool:
        i8, scale, f16 = row[at["vec_i8"]], row[at["scale"]], row[at["vec_f16"]]
        if not isinstance(i8, bytes) or not isinstance(f16, bytes) or len(f16) != 2 * len(i8) or not i8:
            return False
        if not isinstance(scale, float):
            return False
        a = np.frombuffer(f16, np.float16).astype(np.float32)
        b = dequantize_int8(np.frombuffer(i8, np.int8)[None], np.array([scale], np.float32))[0]
        n = float(np.linalg.norm(a))
        return bool(abs(n - 1) < 0.01 and float(a @ b) / max(float(np.linalg.norm(b)), 1e-12) > 0.99)

    return sound


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


class _Rows:
    """Rows of `table` in rising rowid order; a damaged stretch is skipped by probing for the next
    rowid that can be read. Every round yields or passes at least one rowid, so it always ends."""

    def __init__(self, conn: sqlite3.Connection, table: str, cols: list[str]) -> None:
        self.conn, self.table, self.skipped = conn, table, 0
        self.sql = f"SELECT rowid, {','.join(cols)} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        self.one = f"SELECT rowid, {','.join(cols)} FROM {table} WHERE rowid = ?"
        self._it = self._rows()

    def __iter__(self) -> Iterator[tuple]:
        return self._it

    def __next__(self) -> tuple:
        return next(self._it)

    def _read(self, last: int, n: int) -> list[tuple] | None:
        try:
            return self.conn.execute(self.sql, (last, n)).fetchall()
        except sqlite3.DatabaseError:
            return None

    def _rows(self) -> Iterator[tuple]:
        last = -(2**63)
        while True:
            # LIMIT matters: a cursor reads one row ahead, so a damaged row would hide the one before it;
            # on an error, walk up to the damage one row at a time.
            rows = self._read(last, READ_CHUNK)
            if rows is None:
                rows = self._read(last, 1)
            if rows == []:
                return
            for row in rows or ():
                if row[0] <= last:  # a damaged tree can answer out of order
                    break
                yield row[1:]
                last = row[0]
            else:
                if rows is not None:
                    continue
            # Damage right after `last`: jump to the next rowid whose row reads back on its own.
            nxt = self._next_readable(last)
            if nxt is None:
                return
            self.skipped += 1
            try:
                row = self.conn.execute(self.one, (nxt,)).fetchone()
            except sqlite3.DatabaseError:
                row = None
            if row is not None:
                yield row[1:]
            last = nxt

    def _readable_from(self, start: int) -> int | None | bool:
        """The first rowid >= start if its row reads back; None past the end; False if damaged."""
        try:
            row = self.conn.execute(
                f"SELECT rowid FROM {self.table} WHERE rowid >= ? ORDER BY rowid LIMIT 1", (start,)
            ).fetchone()
            if row is None:
                return None
            if row[0] < start or self.conn.execute(self.one, (row[0],)).fetchone() is None:
                return False
        except sqlite3.DatabaseError:
            return False
        return row[0]

    def _next_readable(self, last: int) -> int | None:
        """The first readable rowid after `last`: gallop forward, then bisect back (assumes the damage
        is one stretch; rows inside a second stretch in between are lost with it)."""
        base = max(last, 0)
        gap, found = 1, False
        while gap < 2**62:
            found = self._readable_from(base + gap)
            if found is not False:
                break
            gap *= 2
        if found is False or found is None:
            return None
        lo, hi = base + gap // 2, base + gap  # from lo: damaged (or the start); from hi: readable
        best = found
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = self._readable_from(mid)
            if r is False:
                lo = mid
            else:
                hi = mid
                if r is not None:
                    best = min(best, r)
        return best if best > last else None


def _verify(db: Path) -> list[str]:
    conn = open_readonly(db)
    try:
        return integrity(conn)
    finally:
        conn.close()


def _row_counts(db: Path) -> dict[str, int]:
    conn = open_readonly(db)
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if not r[0].startswith(("sqlite_", *DERIVED))
        ]
        return {n: conn.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}
    finally:
        conn.close()
