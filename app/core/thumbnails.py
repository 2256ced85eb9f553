"""Thumbnails in a disk cache (app.core.cache: the user cache folder, capped); photos are only ever read.

Decoding happens in a worker process (app.core.decode_pool): a file that crashes or hangs its decoder
costs its thumbnail, never the window.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PIL import Image

from app.core.atomic import atomic_write
from app.core.cache import touch
from app.core.decode_pool import DecodeJob, decode_isolated
from app.core.faults import MB, disk_full_guard

CACHE_KEPT = "thumbnails are shown without being cached meanwhile; your library is unchanged"
CACHE_ROOM = 200 * MB  # room for a few thousand thumbnails


def thumbnail_path(cache_dir: Path, src: Path, size: int) -> Path:
    """Cache file for `src` at `size`; the key includes mtime and size, so an edited photo gets a new one."""
    st = os.stat(src)
    key = hashlib.sha1(f"{os.fsencode(src)!r}:{st.st_mtime_ns}:{st.st_size}:{size}".encode()).hexdigest()
    return cache_dir / key[:2] / f"{key}.jpg"


def render_thumbnail(src: Path, size: int = 256, decoder: str = DecodeJob.decoder) -> Image.Image:
    """The thumbnail of `src` in memory (longest side `size`), through the hardened decoder (format
    allow-list, pixel limit, EXIF orientation, JPEG draft) in a worker process. Raises DecodeError for
    broken files (a crashed or hung decoder included)."""
    img = Image.fromarray(decode_isolated(src, size, decoder).pixels, "RGB")
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    return img


def ensure_thumbnail(src: Path, cache_dir: Path, size: int = 256, decoder: str = DecodeJob.decoder) -> Path:
    """The cached thumbnail of `src` (longest side `size`), decoding the photo only when missing.

    Raises DecodeError for broken files, DiskFullError when the cache's disk is full (nothing is
    left behind; `render_thumbnail` still gives the picture).
    """
    dst = thumbnail_path(cache_dir, src, size)
    if dst.exists():
        touch(dst)  # recently used: eviction keeps it
        return dst
    img = render_thumbnail(src, size, decoder)
    with disk_full_guard(cache_dir, CACHE_KEPT, CACHE_ROOM):
        dst.parent.mkdir(parents=True, exist_ok=True)
        # the GUI's loader threads may render the same photo at once; each writes its own file
        with atomic_write(dst) as f:
            img.save(f, "JPEG", quality=85)
    return dst
