"""One indexer per library: an exclusive lock file beside the database, held while a job indexes.

A second `fovea index` (or a window's index job) on a library another process is indexing waits
for it and then finds the files already embedded (the scan skips unchanged files), so nothing is
embedded twice. The lock is `flock` on `<db>.index.lock`: the kernel drops it when its holder exits,
even after a crash, so a stale lock never blocks anyone. The file holds the holder's pid for messages.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core.errors import FoveaError


class IndexerBusy(FoveaError):
    """Another process is indexing this library, and the caller chose not to wait (or stopped waiting)."""


def lock_path(db: str | Path) -> Path:
    return Path(f"{db}.index.lock")


class IndexLock:
    """The library's index lock; `try_acquire` never blocks, so a job can keep reporting while it waits."""

    def __init__(self, db: str | Path) -> None:
        self.db = db
        self.path = lock_path(db)
        self._fh = None

    def try_acquire(self) -> bool:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(str(os.getpid()))
        self._fh.flush()
        return True

    def busy_message(self) -> str:
        """Who holds the lock, in words (for the waiting line)."""
        pid = ""
        if self._fh is not None:
            self._fh.seek(0)
            pid = self._fh.read().strip()
        who = f"pid {pid}" if pid.isdigit() else "another process"
        return f"another Fovea process ({who}) is indexing {self.db}"

    def release(self) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


WAITING = "; waiting for it to finish (its work is not repeated)"


@contextmanager
def index_lock(
    db: str | Path,
    *,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    poll_s: float = 0.25,
) -> Iterator[None]:
    """Hold the library's index lock for the block; waits (saying so once through `on_wait`) while
    another process holds it, or raises IndexerBusy when `wait` is False or `should_stop()` turns true."""
    if str(db) == ":memory:":  # a private in-memory library: nobody else can index it
        yield
        return
    lock = IndexLock(db)
    try:
        told = False
        while not lock.try_acquire():
            if not wait or (should_stop is not None and should_stop()):
                raise IndexerBusy(lock.busy_message())
            if not told and on_wait is not None:
                on_wait(lock.busy_message() + WAITING)
                told = True
            time.sleep(poll_s)
        yield
    finally:
        lock.release()
