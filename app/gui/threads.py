"""Thread pools with a stack deep enough for Python and native code.

macOS gives secondary threads 512 KiB (Qt keeps the platform default), and deep Python frames plus
MLX/PIL/numpy C frames overflow it: the process crashes (SIGBUS) instead of raising RecursionError.
16 MiB is the main thread's size on macOS (`ulimit -s` 8 MiB on Linux) with room to spare; the memory
is reserved, not committed, so idle pools cost nothing.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QThreadPool

STACK_BYTES = 16 << 20


def thread_pool(parent: QObject | None = None, max_threads: int | None = None) -> QThreadPool:
    """A QThreadPool whose threads get STACK_BYTES of stack; every pool in the GUI comes from here."""
    pool = QThreadPool(parent)
    pool.setStackSize(STACK_BYTES)
    if max_threads is not None:
        pool.setMaxThreadCount(max_threads)
    return pool


def configure_global_pool() -> QThreadPool:
    """QThreadPool.globalInstance() with the same stack (its threads start lazily, after this)."""
    pool = QThreadPool.globalInstance()
    pool.setStackSize(STACK_BYTES)
    return pool
