"""Safe image opening: read-only, whitelisted formats, a pixel limit, orientation and mode fixes.

Every failure on a hostile or broken file becomes a `DecodeError` with a short reason, never a crash.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps

from app.core.errors import FoveaError
from app.core.image_formats import EXTENSIONS as EXTENSIONS  # re-exported: the scanner's whitelist
from app.core.image_formats import HEIF_EXTENSIONS, JXL_EXTENSIONS, RAW_EXTENSIONS
from app.core.tiff import TIFF_MAGIC

try:  # HEIC/HEIF (a default dependency; the app still runs without it and says what is missing)
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_FORMATS: tuple[str, ...] = ("HEIF",)
except ImportError:
    HEIF_FORMATS = ()
try:  # JPEG XL through pillow-jxl-plugin (optional extra `jxl`)
    import pillow_jxl  # noqa: F401  (registers the JXL opener)

    JXL_FORMATS: tuple[str, ...] = ("JXL",)
except ImportError:
    JXL_FORMATS = ()

# Pillow 11.3+ reads AVIF itself; APNG is Pillow's PNG (first frame); the JPEG opener yields MPO files
# (first picture). Only openers this Pillow build has: a missing one must not break every open.
Image.init()
FORMATS: tuple[str, ...] = tuple(
    f
    for f in ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "AVIF", "JPEG2000", *HEIF_FORMATS, *JXL_FORMATS)
    if f in Image.OPEN
)
# ~179 Mpx, Pillow's own error limit: above any camera we expect; a 30000x30000 bomb is 900 Mpx.
MAX_PIXELS = 178_956_970
# We enforce MAX_PIXELS ourselves, and corrupt EXIF only costs metadata: neither needs a console warning.
# (Filters are set once here because warnings.catch_warnings is not thread-safe in decode workers.)
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", message="(Corrupt|Possibly corrupt) EXIF", category=UserWarning)

_DATE_ORIGINAL, _DATETIME, _MODEL, _EXIF_IFD = 36867, 306, 272, 0x8769


class DecodeError(FoveaError):
    """A file that cannot be read as an image; `reason` is short and fit for the errors table."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class Decoded:
    """An upright RGB image (possibly reduced by JPEG draft) and what we record about the file."""

    image: Image.Image
    width: int  # full-resolution size after EXIF orientation
    height: int
    taken_at: str | None  # ISO 8601, from DateTimeOriginal (else DateTime)
    camera: str | None


def open_image(path: Path, min_side: int | None = None) -> Decoded:
    """Decode `path` read-only. `min_side`: JPEGs may be decoded reduced (DCT scaling) to no less than this.

    Raises DecodeError for anything that is not a sane image; FileNotFoundError passes through
    so callers can tell a vanished file from a broken one.
    """
    ext = path.suffix.lower()
    try:
        with open(path, "rb") as fp:
            if os.fstat(fp.fileno()).st_size == 0:
                raise DecodeError(path, "empty file (0 bytes)")
            if ext in RAW_EXTENSIONS:
                from app.core.raw import open_raw

                return open_raw(path, fp, min_side)
            try:
                im = Image.open(fp, formats=FORMATS)
            except Image.UnidentifiedImageError:
                fp.seek(0)
                if fp.read(4) not in TIFF_MAGIC:
                    raise
                from app.core.tiff import open_tiff_first_page

                try:  # a scan or export Pillow cannot read
                    im = open_tiff_first_page(path, MAX_PIXELS)
                except Exception as e:  # noqa: BLE001 - tifffile raises its own error types
                    raise DecodeError(
                        path, f"damaged TIFF, or a kind we cannot read ({type(e).__name__}: {e})"
                    ) from e
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise DecodeError(path, f"{w}x{h} exceeds the {MAX_PIXELS // 1_000_000} Mpx limit")
            taken, camera, orientation = _metadata(im)
            if min_side and im.format in ("JPEG", "MPO"):
                im.draft("RGB", (min_side, min_side))
            im.load()  # animations (GIF, WebP, APNG) and multipage TIFFs stay on their first frame
            rgb = reduce_to(to_rgb(_upright(im)), min_side)
    except (DecodeError, FileNotFoundError):
        raise
    except Image.DecompressionBombError as e:
        raise DecodeError(path, f"too many pixels, refused as a possible decompression bomb ({e})") from e
    except Image.UnidentifiedImageError as e:
        raise DecodeError(path, _unidentified_reason(ext)) from e
    except IsADirectoryError as e:
        raise DecodeError(path, "is a directory") from e
    except PermissionError as e:
        raise DecodeError(path, "permission denied") from e
    except MemoryError as e:
        raise DecodeError(path, "out of memory while decoding") from e
    except (
        OSError
    ) as e:  # Pillow's decoders: "decoder error -2", "image file is truncated", "broken data stream"
        raise DecodeError(path, f"damaged image data ({e})") from e
    except Exception as e:  # noqa: BLE001 - hostile files raise anything (ValueError, SyntaxError, struct.error ...)
        raise DecodeError(path, f"{type(e).__name__}: {e}") from e
    if orientation in (5, 6, 7, 8):  # these orientations rotate by 90 degrees
        w, h = h, w
    return Decoded(rgb, w, h, taken, camera)


def _unidentified_reason(ext: str) -> str:
    if ext in HEIF_EXTENSIONS and not HEIF_FORMATS:
        return "HEIC/HEIF photo: this install lacks the pillow-heif package that reads it"
    if ext in JXL_EXTENSIONS and not JXL_FORMATS:
        return "JPEG XL photo: this install lacks the pillow-jxl-plugin package that reads it"
    return "not a recognised image: the contents match no format we read (damaged, or not really a photo)"


def reduce_to(im: Image.Image, min_side: int | None) -> Image.Image:
    """Box-reduce by a whole factor while the short side stays >= min_side (what JPEG draft does, for all
    formats): a 12 Mpx HEIC or a RAW demosaic never travels or gets resized at full size."""
    if not min_side:
        return im
    k = min(im.size) // min_side
    return im.reduce(k) if k >= 2 else im


def _metadata(im: Image.Image) -> tuple[str | None, str | None, int]:
    """(taken_at, camera, orientation); corrupt EXIF only loses the metadata."""
    try:
        exif = im.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
        taken = _iso_date(sub.get(_DATE_ORIGINAL) or exif.get(_DATETIME))
        model = exif.get(_MODEL)
        camera = (model.strip("\x00 ").strip() or None) if isinstance(model, str) else None
        orientation = exif.get(0x0112, 1)
        return taken, camera, orientation if isinstance(orientation, int) else 1
    except Exception:  # noqa: BLE001 - metadata is optional
        return None, None, 1


def _iso_date(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:  # "0000:00:00 00:00:00" and other junk
        return None


def _upright(im: Image.Image) -> Image.Image:
    """`im` turned upright in place: an upright photo is not copied (exif_transpose's default copies it)."""
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception:  # noqa: BLE001 - a broken orientation tag leaves the pixels as stored
        pass
    return im


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: alpha composited on white, 16-bit scaled (not clipped) to 8-bit."""
    if im.mode == "RGB":
        return im
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(np.rint(a * (255.0 / peak)), 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


T = TypeVar("T")
R = TypeVar("R")


def decode_ahead(
    items: Iterable[T], fn: Callable[[T], R], workers: int, depth: int
) -> Iterator[tuple[T, Future]]:
    """Run `fn` over `items` on `workers` threads, at most `depth` in flight; yield (item, done future) in order.

    The bound is the memory cost: each in-flight result holds one preprocessed input (224x224x3 float32
    is 0.6 MB) while its worker briefly holds one decoded, draft-reduced photo (a 12 Mpx JPEG at 1/4 is
    ~2 MB), so depth=64 costs well under 200 MB however large the library.
    """
    pending: deque[tuple[T, Future]] = deque()
    it = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fovea-decode") as pool:
        try:
            for item in it:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= depth:
                    first = pending.popleft()
                    first[1].exception()  # wait without raising
                    yield first
            while pending:
                first = pending.popleft()
                first[1].exception()
                yield first
        finally:  # a stopped consumer must not leave decodes running
            for _, f in pending:
                f.cancel()
