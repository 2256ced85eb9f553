"""TIFFs that Pillow refuses (planar float or 32-bit scans, odd sample layouts) read through tifffile:
the first page, scaled to 8-bit RGB. Pillow stays the first choice; this is the fallback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF


def open_tiff_first_page(path: Path, max_pixels: int) -> Image.Image:
    """First page as RGB; raises ValueError (with tifffile's reason) when it cannot be read either."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        if int(np.prod(page.shape[:3])) > max_pixels * 4:
            raise ValueError(f"first page {page.shape} is over the pixel limit")
        a = page.asarray()
        if page.planarconfig == 2 and a.ndim == 3:  # separate planes: (C, H, W) -> (H, W, C)
            a = np.moveaxis(a, 0, -1)
    return Image.fromarray(to_uint8(a[..., :3] if a.ndim == 3 else a))


def to_uint8(a: np.ndarray) -> np.ndarray:
    """Integer samples scaled by their type's range, floats by 1.0 (or by their peak when brighter)."""
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind in "ui":
        peak = float(np.iinfo(a.dtype).max)
    else:
        a = np.nan_to_num(a.astype(np.float64))
        peak = max(1.0, float(a.max()))
    return np.clip(np.rint(a.astype(np.float64) * (255.0 / peak)), 0, 255).astype(np.uint8)
