"""Camera RAW files through rawpy (LibRaw): the embedded JPEG preview when it is large enough, else a
half-size demosaic; capture date and camera from the TIFF header (DNG, CR2, NEF, ARW, PEF, ...) or
from the preview's EXIF (CR3, RAF, RW2, ORF, ...).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, TiffImagePlugin

from app.core.decode import MAX_PIXELS, Decoded, DecodeError, _iso_date, _metadata, reduce_to, to_rgb

_MODEL, _DATETIME, _EXIF_IFD, _DATE_ORIGINAL = 272, 306, 0x8769, 36867
# LibRaw's flip code -> the Pillow transpose that makes the (unrotated) preview upright.
_FLIP = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}


def open_raw(path: Path, fp: BinaryIO, min_side: int | None) -> Decoded:
    """Decode a RAW file read-only (LibRaw reads from our open handle's bytes, never writes)."""
    try:
        import rawpy
    except ImportError as e:
        raise DecodeError(path, "RAW photo: this install lacks the rawpy package that reads it") from e
    data = fp.read()
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            s = raw.sizes
            if s.width * s.height > MAX_PIXELS:
                raise DecodeError(
                    path, f"{s.width}x{s.height} exceeds the {MAX_PIXELS // 1_000_000} Mpx limit"
                )
            w, h = (s.height, s.width) if s.flip in (5, 6) else (s.width, s.height)
            preview, jpeg = _preview(raw, rawpy, min_side)
            if preview is None:
                # half_size: one pixel per 2x2 Bayer block, ~4x faster than a full demosaic and plenty for a model.
                rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
                preview = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
            elif s.flip in _FLIP:
                preview = preview.transpose(_FLIP[s.flip])
    except rawpy.LibRawFileUnsupportedError as e:
        raise DecodeError(path, f"RAW format we cannot read: {path.suffix} ({_msg(e)})") from e
    except rawpy.LibRawError as e:
        raise DecodeError(path, f"damaged or unreadable RAW file ({type(e).__name__}: {_msg(e)})") from e
    taken, camera = raw_metadata(data, jpeg)
    return Decoded(reduce_to(to_rgb(preview), min_side), w, h, taken, camera)


def _preview(raw: Any, rawpy: Any, min_side: int | None) -> tuple[Image.Image | None, bytes | None]:
    """(the embedded preview if its short side reaches min_side, its JPEG bytes for metadata)."""
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None, None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        jpeg = bytes(thumb.data)
        im = Image.open(io.BytesIO(jpeg), formats=("JPEG", "MPO"))
    else:  # an uncompressed bitmap preview
        jpeg, im = None, Image.fromarray(np.ascontiguousarray(thumb.data)).convert("RGB")
    if min(im.size) < (min_side or 0):
        return None, jpeg
    if min_side and im.format in ("JPEG", "MPO"):
        im.draft("RGB", (min_side, min_side))
    im.load()
    return im, jpeg


def raw_metadata(data: bytes, preview_jpeg: bytes | None) -> tuple[str | None, str | None]:
    """(taken_at ISO, camera) from a TIFF-based RAW's IFD0 and EXIF IFD, else from the preview's EXIF."""
    taken = camera = None
    try:
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            ifd = TiffImagePlugin.ImageFileDirectory_v2(data[:8])
            f = io.BytesIO(data)
            f.seek(ifd.next)
            ifd.load(f)
            model = ifd.get(_MODEL)
            camera = model.strip("\x00 ").strip() or None if isinstance(model, str) else None
            original = None
            if isinstance(ifd.get(_EXIF_IFD), int):
                sub = TiffImagePlugin.ImageFileDirectory_v2(data[:8])
                f.seek(ifd[_EXIF_IFD])
                sub.load(f)
                original = sub.get(_DATE_ORIGINAL)
            taken = _iso_date(original or ifd.get(_DATETIME))
    except Exception:  # noqa: BLE001 - metadata is optional; the preview may still have it
        pass
    if (taken is None or camera is None) and preview_jpeg:
        try:
            t2, c2, _ = _metadata(Image.open(io.BytesIO(preview_jpeg)))
            taken, camera = taken or t2, camera or c2
        except Exception:  # noqa: BLE001
            pass
    return taken, camera


def _msg(e: Exception) -> str:
    m = e.args[0] if e.args else e
    return (m.decode(errors="replace") if isinstance(m, bytes) else str(m)).strip() or type(e).__name__
