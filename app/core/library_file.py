"""A library file that cannot be opened: what to tell the person, and moving it aside (never deleting it)
so a new library can start in its place."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from app.core.store import StoreError

EXPLAIN = {
    "folder": "This is a folder, not a library file.",
    "not-database": "This file is not a Fovea library (not an SQLite database).",
    "corrupt": "The library file is damaged (the database is malformed).",
    "read-only": "The library file is read-only, so Fovea cannot record anything in it.",
    "newer-schema": "The library was written by a newer version of Fovea.",
    "unopenable": "The library file could not be opened.",
}
# Kinds whose file can still be read as it is: browsing and searching work, changes are off.
BROWSABLE = frozenset({"read-only", "newer-schema"})


@dataclass(frozen=True)
class LibraryProblem:
    path: Path
    kind: str
    summary: str  # one sentence for a person
    detail: str  # the underlying reason
    can_browse: bool


def diagnose(path: Path, error: StoreError) -> LibraryProblem:
    kind = error.kind if error.kind in EXPLAIN else "unopenable"
    return LibraryProblem(Path(path), kind, EXPLAIN[kind], str(error), kind in BROWSABLE)


def aside_name(path: Path, now: float | None = None) -> Path:
    """`library.sqlite` -> `library.unopenable-2026-11-30-2014.sqlite`, never the name of something that
    exists (a counter is added)."""
    stamp = time.strftime("%Y-%m-%d-%H%M", time.localtime(time.time() if now is None else now))
    for n in range(1, 1000):
        extra = "" if n == 1 else f"-{n}"
        cand = path.with_name(f"{path.stem}.unopenable-{stamp}{extra}{path.suffix}")
        if not cand.exists() and not Path(f"{cand}-wal").exists():
            return cand
    raise StoreError(f"{path}: no free name to move it aside", "unopenable")


def move_aside(path: Path, now: float | None = None) -> Path:
    """Rename the library (with its -wal and -shm files) to a dated name beside it; returns the new name.
    A rename only: the bytes are kept, nothing is deleted or overwritten."""
    path = Path(path)
    dst = aside_name(path, now)
    path.rename(dst)
    for side in ("-wal", "-shm"):
        extra = Path(f"{path}{side}")
        if extra.exists():
            extra.rename(f"{dst}{side}")
    return dst
