"""The store's statements for checking and salvaging a library file (`fovea doctor [--repair]`).

These work below `Store`, on raw connections to a file that may be damaged, read-only or of another
schema: app.core.doctor decides what is wrong, app.core.salvage how to rescue it; the SQL is here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

# Rows whose parent is gone: (table, description, WHERE clause selecting them).
FOREIGN = (
    ("tags", "tags of images no longer in the library", "image_id NOT IN (SELECT id FROM images)"),
    ("captions", "captions of images no longer in the library", "image_id NOT IN (SELECT id FROM images)"),
    ("images", "images whose library folder row is gone", "root_id IS NULL OR root_id NOT IN (SELECT id FROM roots)"),
)  # fmt: skip
ORPHAN_EMBEDDINGS = "image_id NOT IN (SELECT id FROM images)"
READ_CHUNK = 256


def open_readonly(db: Path) -> sqlite3.Connection:
    """A connection that cannot change the file (nor create it when it is missing)."""
    conn = sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA query_only = 1")
    return conn


def allow_short_file(conn: sqlite3.Connection) -> None:
    """Lets SQLite read a file shorter than its header says (a truncated copy) instead of refusing it whole."""
    conn.execute("PRAGMA writable_schema = ON")


def integrity(conn: sqlite3.Connection, lines: int) -> list[str]:
    """SQLite's integrity check: an empty list when the file is sound, else its first `lines` problems."""
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA integrity_check({int(lines)})")]
    except sqlite3.DatabaseError as e:  # 'file is not a database', a header SQLite cannot parse
        return [str(e)]
    return [] if rows == ["ok"] else rows


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def table_schemas(conn: sqlite3.Connection) -> list[tuple[str, str | None]]:
    """(name, CREATE statement) of every table, as the file records them."""
    return conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()


def create_table(conn: sqlite3.Connection, create_sql: str) -> None:
    """A table as another file declared it (`create_sql` read from that file's sqlite_master)."""
    conn.execute(create_sql)


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def row_counts(conn: sqlite3.Connection, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Rows per table, by name, leaving out SQLite's own tables and names starting with `skip`."""
    names = [
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if not r[0].startswith(("sqlite_", *skip))
    ]
    return {n: conn.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}


def foreign_counts(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """(description, rows) for each kind of row whose parent is gone, for the tables the file has."""
    have = tables(conn)
    return [(desc, _count(conn, t, where)) for t, desc, where in FOREIGN if t in have]


def orphan_embeddings(conn: sqlite3.Connection) -> int | None:
    """Embeddings of images no longer in the library; None when the file has no embeddings table."""
    return _count(conn, "embeddings", ORPHAN_EMBEDDINGS) if "embeddings" in tables(conn) else None


def _count(conn: sqlite3.Connection, table: str, where: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]


def root_rows(conn: sqlite3.Connection) -> list[tuple[str, str]] | None:
    """(path text, state) of every library root; None when the file has no roots table."""
    if "roots" not in tables(conn):
        return None
    return conn.execute("SELECT path, state FROM roots ORDER BY id").fetchall()


def vectors_generation(conn: sqlite3.Connection) -> int | None:
    """The counter persisted search indexes are checked against; None when the file has none."""
    if "vectors_generation" not in tables(conn):
        return None
    row = conn.execute("SELECT value FROM vectors_generation WHERE id = 0").fetchone()
    return None if row is None else row[0]


def remove_foreign(conn: sqlite3.Connection) -> dict[str, int]:
    """Re-attach images to the root folder holding them, then delete rows whose parent is gone."""
    have = tables(conn)
    if {"images", "roots"} <= have:
        for root_id, root in conn.execute("SELECT id, path FROM roots").fetchall():
            prefix = root.rstrip("/") + "/"
            conn.execute(
                """UPDATE images SET root_id = ? WHERE (root_id IS NULL OR root_id NOT IN (SELECT id FROM roots))
                   AND substr(path, 1, ?) = ?""",
                (root_id, len(prefix), prefix),
            )
    removed = {}
    for table, _, where in (FOREIGN[2], FOREIGN[0], FOREIGN[1], ("embeddings", "", ORPHAN_EMBEDDINGS)):
        if table in have:
            n = conn.execute(f"DELETE FROM {table} WHERE {where}").rowcount
            if n:
                removed[table] = n
    return removed


def insert_rows(conn: sqlite3.Connection, table: str, cols: list[str], rows: list[tuple]) -> None:
    """Copy `rows` (values of `cols`) into `table`, keeping a row already there."""
    marks = ",".join("?" * len(cols))
    conn.executemany(f"INSERT OR IGNORE INTO {table} ({','.join(cols)}) VALUES ({marks})", rows)


class DamagedRows:
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
