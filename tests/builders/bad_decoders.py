"""Decoders that misbehave on purpose, run inside decode workers (app.core.decode_pool) by tests.

The file name says what happens: 'segfault' kills the worker with SIGSEGV, 'abort' calls abort(),
'hang' never returns, 'sleepy' takes 2 s (a slow file, or one starved of CPU), 'vanish' deletes the file first (as a user might mid-run), 'noisy' writes native-style messages to fd 2 and raises a Python warning;
anything else is decoded normally.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from pathlib import Path

from app.core.decode import Decoded, open_image


def decode(path: Path, min_side: int | None = None) -> Decoded:
    name = path.name
    if "segfault" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "abort" in name:
        os.abort()
    if "hang" in name:
        time.sleep(3600)
    if "sleepy" in name:
        time.sleep(2)
    if "vanish" in name and path.exists():
        path.unlink()
    if "noisy" in name:
        os.write(2, b"TIFFFillStrip: Read error on strip 0; got 0 bytes, expected 4096.\n")
        warnings.warn(
            "Corrupt EXIF data.  Expecting to read 12 bytes but only got 4.", UserWarning, stacklevel=1
        )
    return open_image(path, min_side=min_side)


def slow_decode(path: Path, min_side: int | None = None) -> Decoded:
    """A decoder slower than the model (a large HEIC on a slow machine): 0.1 s per file."""
    time.sleep(0.1)
    return open_image(path, min_side=min_side)
