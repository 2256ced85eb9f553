"""A full disk, anywhere Fovea writes: one typed error that names the volume and the space to free.

Every write path (the store, thumbnails, model pulls and conversions) turns ENOSPC / EDQUOT and
SQLite's SQLITE_FULL into `DiskFullError`; the CLI prints it and exits 1, the GUI shows it as the
job's error. Free space comes from `os.statvfs` through `free_bytes`, which tests replace with a fake.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core.errors import FoveaError

MB = 1_000_000
SQLITE_FULL = 13  # sqlite3.h; Python < 3.11 has no sqlite_errorcode, the message says it too
# What to ask for when the need is unknown (an SQLite write): room for a few hundred batches.
DEFAULT_NEED = 100 * MB
KEPT_INDEX = "nothing indexed so far was lost"


class DiskFullError(FoveaError):
    """The disk holding `volume` is full; `needed` is about how many bytes to free."""

    def __init__(self, path: str | Path, needed: int, kept: str = KEPT_INDEX) -> None:
        self.path = Path(path)
        self.volume = volume_of(self.path)
        self.needed = max(int(needed), MB)
        self.kept = kept
        super().__init__(
            f"the disk holding {self.volume} is full: free about {-(-self.needed // MB)} MB and run again"
            + (f"; {kept}" if kept else "")
        )


def existing_ancestor(path: str | Path) -> Path:
    """`path` or its nearest existing parent (a file about to be created is measured by its folder)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def volume_of(path: str | Path) -> Path:
    """The mount point holding `path` (what the person sees in Finder: /Volumes/NAS, or /)."""
    p = existing_ancestor(path)
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def free_bytes(path: str | Path) -> int:
    """Bytes an unprivileged process may still write on the volume holding `path`."""
    st = os.statvfs(existing_ancestor(path))
    return st.f_bavail * st.f_frsize


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC / EDQUOT and for SQLite's SQLITE_FULL ('database or disk is full')."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == SQLITE_FULL) or "database or disk is full" in str(exc)
    # Writers in Rust or C++ (safetensors, MLX) raise their own types with the OS message inside.
    text = str(exc)
    return "No space left on device" in text or "os error 28" in text


def need_for(path: str | Path, wanted: int = DEFAULT_NEED) -> int:
    """Bytes still to free so that `wanted` bytes fit (at least 1 MB: the disk is full right now)."""
    try:
        return max(wanted - free_bytes(path), MB)
    except OSError:
        return wanted


def ensure_free(path: str | Path, wanted: int, kept: str = "") -> None:
    """Refuse up front (DiskFullError) when the volume holding `path` has less than `wanted` bytes free."""
    try:
        free = free_bytes(path)
    except OSError:  # not measurable (a vanished mount): let the write itself report
        return
    if free < wanted:
        raise DiskFullError(path, wanted - free, kept)


@contextmanager
def disk_full_guard(path: str | Path, kept: str = KEPT_INDEX, wanted: int = DEFAULT_NEED) -> Iterator[None]:
    """Turn a disk-full error raised inside the block into DiskFullError naming `path`'s volume."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as e:
        if is_disk_full(e):
            raise DiskFullError(path, need_for(path, wanted), kept) from e
        raise
