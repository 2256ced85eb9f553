"""What keeps a library safe from its surroundings: copies before an upgrade, the journal mode that fits
its volume, and the errors that say the file is damaged or busy (the store's SQL stays in store.py)."""

from __future__ import annotations

import glob
import sqlite3
from pathlib import Path

from app.core.errors import FoveaError

BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another one (an index batch takes seconds)


def journal_for(path: str | Path) -> str:
    """WAL on a local disk; a rollback journal on a network or FUSE volume, where WAL's shared memory
    cannot work between machines (SQLite's documented limit) and a second Mac would corrupt the file."""
    from app.core.volumes import VolumeKind, volume_kind

    return "delete" if volume_kind(path) in (VolumeKind.NETWORK, VolumeKind.FUSE) else "wal"


class LibraryBusyError(FoveaError):
    """Another Fovea (a window, a `fovea index`, another Mac on the share) is writing the library."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(
            f"{path} is being changed by another Fovea (a window, a `fovea index`, or another Mac on the "
            f"share) and stayed busy for {BUSY_TIMEOUT_S:.0f} s; try again when it has finished"
        )


def is_busy(e: BaseException) -> bool:
    return isinstance(e, sqlite3.OperationalError) and (
        getattr(e, "sqlite_errorcode", 0) & 0xFF == 5 or "database is locked" in str(e)
    )


def damage_hint(e: sqlite3.Error) -> str:
    """What to do about an error that means the file itself is damaged; empty for other errors."""
    text = str(e).lower()
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return "; run `fovea doctor --repair` to salvage what is readable (the damaged file is kept)"
    return ""


BACKUPS_KEPT = 2


def backup_beside(conn: sqlite3.Connection, db: str | Path, reason: str) -> Path:
    """A compact, consistent copy of the open database beside it (`NAME.backup-STAMP-REASON.sqlite`);
    only the newest BACKUPS_KEPT copies are kept. Raises DiskFullError when the copy would not fit."""
    import time

    from app.core.faults import disk_full_guard, ensure_free

    db = Path(db)
    size = db.stat().st_size + (Path(f"{db}-wal").stat().st_size if Path(f"{db}-wal").exists() else 0)
    kept = "the library was not changed"
    ensure_free(db.parent, size + size // 10 + 1_000_000, kept)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = db.with_name(f"{db.stem}.backup-{stamp}-{reason}{db.suffix}")
    n = 1
    while dest.exists():  # two backups within a second (tests, a quick retry)
        n += 1
        dest = db.with_name(f"{db.stem}.backup-{stamp}.{n}-{reason}{db.suffix}")
    try:
        with disk_full_guard(db.parent, kept, size):
            # VACUUM INTO: a consistent copy even with a WAL (it cannot run inside a transaction).
            conn.execute("VACUUM INTO ?", (str(dest),))
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    for old in backups_of(db)[:-BACKUPS_KEPT]:
        old.unlink(missing_ok=True)
    return dest


def backups_of(db: str | Path) -> list[Path]:
    """Backups made by `backup_beside`, oldest first (the stamp in the name sorts by time)."""
    db = Path(db)
    return sorted(db.parent.glob(f"{glob.escape(db.stem)}.backup-*{glob.escape(db.suffix)}"))
