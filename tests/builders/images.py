"""Generators of test photos: small libraries, EXIF-tagged JPEGs and a corpus of hostile files."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

OK, ERROR, SKIP, LOOP = "ok", "error", "skip", "loop"  # what indexing each corpus entry must give


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like RGB image: a small random colour field upscaled smoothly, plus a gradient."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB")
    im = small.resize((width, height), Image.BICUBIC)
    ramp = np.linspace(0, 60, width, dtype=np.float32)[None, :, None]
    return Image.fromarray(np.clip(np.asarray(im, np.float32) * 0.8 + ramp, 0, 255).astype(np.uint8))


def exif_bytes(orientation: int | None = None, taken: str | None = None, camera: str | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if camera is not None:
        exif[272] = camera
    if taken is not None:
        exif.get_ifd(0x8769)[36867] = taken
    return exif.tobytes()


def save_jpeg(path: Path, im: Image.Image, quality: int = 85, **exif) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"exif": exif_bytes(**exif)} if exif else {}
    im.save(path, "JPEG", quality=quality, **extra)
    return path


def make_library(folder: Path, n: int, seed: int = 0, size: tuple[int, int] = (64, 48)) -> list[Path]:
    """`n` distinct small photos, JPEG and PNG, some in sub-folders, some with EXIF."""
    paths = []
    for i in range(n):
        im = photo(*size, seed=seed * 10_000 + i)
        sub = folder / (f"album{i % 3}" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        if i % 4 == 3:
            p = sub / f"img_{i:04d}.png"
            im.save(p)
        else:
            p = save_jpeg(
                sub / f"img_{i:04d}.jpg", im, taken=f"2020:01:{1 + i % 28:02d} 10:00:00", camera="FakeCam"
            )
        paths.append(p)
    return paths


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header declares width x height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_with_dims(width: int, height: int) -> bytes:
    """A valid small baseline JPEG whose SOF0 header is patched to claim width x height."""
    buf = io.BytesIO()
    photo(16, 16, 1).save(buf, "JPEG", quality=80)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def hostile_corpus(root: Path) -> dict[Path, str]:
    """Write broken, odd and hostile files under `root`; map each to the outcome indexing must give.

    OK: indexed; ERROR: an images row with status 'error' plus an errors-table entry;
    SKIP: never indexed (hidden or system folder); LOOP: a folder problem in the errors table only.
    """
    root.mkdir(parents=True, exist_ok=True)
    out: dict[Path, str] = {}

    def put(name: str, data: bytes, outcome: str) -> Path:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        out[p] = outcome
        return p

    jpeg = _encoded(photo(320, 240, 7), "JPEG", quality=90)
    png = _encoded(photo(200, 150, 8), "PNG")
    put("zero.jpg", b"", ERROR)
    put("truncated.jpg", jpeg[: len(jpeg) // 2], ERROR)
    put("truncated.png", png[: len(png) // 2], ERROR)
    put("text.jpg", b"this is not a picture\n" * 20, ERROR)
    put("random_bytes.png", np.random.default_rng(3).bytes(5000), ERROR)
    put("bomb.png", bomb_png(), ERROR)
    put("huge_dims.jpg", jpeg_with_dims(60000, 60000), ERROR)
    put("pcx_renamed.png", _encoded(photo(32, 32, 9), "PCX"), ERROR)  # a format we refuse to open
    bad_exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + b"\xff\xff" + b"\x13" * 40
    put("corrupt_exif.jpg", _encoded(photo(64, 64, 10), "JPEG", exif=bad_exif), OK)
    put("cmyk.jpg", _encoded(photo(64, 48, 11).convert("CMYK"), "JPEG"), OK)
    sixteen = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    put("sixteen_bit.png", _encoded(sixteen, "PNG"), OK)
    frames = [photo(40, 30, s) for s in (12, 13, 14)]
    put("animated.gif", _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50), OK)
    pal = photo(40, 30, 15).convert("P", palette=Image.ADAPTIVE, colors=16)
    put("palette_transparency.png", _encoded(pal, "PNG", transparency=0), OK)
    put("la.png", _encoded(photo(40, 30, 16).convert("LA"), "PNG"), OK)
    put("rgba.webp", _encoded(photo(40, 30, 17).convert("RGBA"), "WEBP"), OK)
    put("scan.tiff", _encoded(photo(40, 30, 18), "TIFF"), OK)
    put("paint.bmp", _encoded(photo(40, 30, 19), "BMP"), OK)
    put("gif_named.jpg", _encoded(photo(40, 30, 20), "GIF"), OK)  # wrong extension, allowed format
    put("one_pixel.png", _encoded(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), OK)
    put("panorama.jpg", _encoded(photo(12000, 200, 21), "JPEG", quality=80), OK)
    put("huge_valid.jpg", _encoded(photo(4000, 3000, 22), "JPEG", quality=95), OK)
    put("rotated.jpg", _encoded(photo(60, 40, 23), "JPEG", exif=exif_bytes(orientation=6)), OK)
    put("café 東京 \u202e\nnew line.jpg", _encoded(photo(30, 30, 24), "JPEG"), OK)
    put("folder.jpg/inside.png", _encoded(photo(30, 30, 25), "PNG"), OK)  # a directory named like an image
    put(".hidden.jpg", jpeg, SKIP)
    put("@eaDir/thumb.jpg", jpeg, SKIP)
    put(".Trashes/old.jpg", jpeg, SKIP)
    put("$RECYCLE.BIN/old.jpg", jpeg, SKIP)
    put("notes.txt", b"not an image extension", SKIP)
    # Bytes that are not UTF-8: Python hands them over as lone surrogates (PEP 383).
    raw = os.path.join(os.fsencode(root), b"bad_\xff\xfe_name.jpg")
    with open(raw, "wb") as f:
        f.write(_encoded(photo(30, 30, 26), "JPEG"))
    out[Path(os.fsdecode(raw))] = OK
    locked = put("unreadable.jpg", jpeg, ERROR)
    os.chmod(locked, 0)
    if os.access(locked, os.R_OK):  # root reads anything
        out[locked] = OK
    target = put("real.jpg", _encoded(photo(30, 30, 27), "JPEG"), OK)
    (root / "link_to_real.jpg").symlink_to(target)
    out[root / "link_to_real.jpg"] = OK
    (root / "broken_link.jpg").symlink_to(root / "does_not_exist.jpg")
    out[root / "broken_link.jpg"] = ERROR
    (root / "sub").mkdir()
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    out[root / "sub" / "loop"] = LOOP
    return out
