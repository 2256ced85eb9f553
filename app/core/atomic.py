"""Files replaced in one rename, so no reader (another thread, process or the next launch) sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: str | Path, *, durable: bool = False) -> Iterator[BinaryIO]:
    """A binary file that replaces `path` when the block ends without an exception.

    The temporary file beside `path` has a unique name (mkstemp), so concurrent writers of one path
    never rename each other's file away; on an exception it is removed and `path` is untouched.
    `durable` also syncs the data to disk before the rename (files that are costly to rebuild).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)  # only left when the write or the rename failed
