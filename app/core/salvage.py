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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.doctor import check, index_files, integrity, stale_index_files
from app.core.errors import FoveaError
from app.core.faults import ensure_free
from app.core.store_repair import (
    DamagedRows,
    allow_short_file,
    columns,
    create_table,
    insert_rows,
    open_readonly,
    remove_foreign,
    row_counts,
    table_schemas,
    tables,
)

# Derived tables rebuilt after the copy instead of copied: the full-text index and its shadow tables.
DERIVED = ("text_fts", "text_dirty")
CHUNK = 500
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
    allow_short_file(src)
    try:
        try:
            schema = table_schemas(src)
        except sqlite3.DatabaseError as e:
            raise SalvageError(
                f"{source}: nothing is readable, the file's table of contents is damaged ({e}); "
                "start a new library (your photos are untouched) and keep this file for a specialist"
            ) from e
        skipped, dropped = 0, {}
        with Store(work) as dst:
            have = tables(dst.conn)
            for name, sql in schema:
                if (
                    name.startswith(("sqlite_", "lost_and_found", *DERIVED))
                    or not sql
                    or "VIRTUAL" in sql.upper()
                ):
                    continue
                if name not in have:  # a table another module created (calibration thresholds, ...)
                    create_table(dst.conn, sql)
                cols = [c for c in columns(src, name) if c in set(columns(dst.conn, name))]
                rows = DamagedRows(src, name, cols)
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
                        insert_rows(conn, name, cols, chunk)
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


def _verify(db: Path) -> list[str]:
    conn = open_readonly(db)
    try:
        return integrity(conn)
    finally:
        conn.close()


def _row_counts(db: Path) -> dict[str, int]:
    conn = open_readonly(db)
    try:
        return row_counts(conn, skip=DERIVED)
    finally:
        conn.close()
