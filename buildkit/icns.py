"""An .icns holding every macOS icon size, 16 to 512 pt at @1x and @2x, each entry a PNG.

Pillow's ICNS writer leaves out the 16 and 32 pt @1x entries (icp4, icp5), so Finder's list view and
the Dock's small sizes fall back to scaling a larger image. The container is simple (Apple's "icns"
format: a 'icns' header, then type + length + data per entry), so it is written here.
"""

from __future__ import annotations

import io
import struct

from PIL import Image

# OSType -> pixel size: 16/32/128/256/512 pt at @1x, then @2x (ic11..ic14 and ic10).
ENTRIES = {
    "icp4": 16,
    "ic11": 32,
    "icp5": 32,
    "ic12": 64,
    "ic07": 128,
    "ic13": 256,
    "ic08": 256,
    "ic14": 512,
    "ic09": 512,
    "ic10": 1024,
}


def icns_bytes(master: Image.Image) -> bytes:
    """Every entry of ENTRIES, downsampled from `master` (1024x1024 or larger, RGBA)."""
    chunks = []
    for ostype, px in ENTRIES.items():
        buf = io.BytesIO()
        master.convert("RGBA").resize((px, px), Image.Resampling.LANCZOS).save(buf, "PNG", optimize=True)
        data = buf.getvalue()
        chunks.append(ostype.encode("ascii") + struct.pack(">I", len(data) + 8) + data)
    body = b"".join(chunks)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def icns_entries(data: bytes) -> dict[str, tuple[int, int]]:
    """OSType -> (width, height) of each PNG entry of an .icns (other entries, e.g. 'TOC ', are skipped)."""
    if data[:4] != b"icns" or struct.unpack(">I", data[4:8])[0] != len(data):
        raise ValueError("not an icns file (bad magic or length)")
    out, i = {}, 8
    while i < len(data):
        ostype, n = data[i : i + 4].decode("ascii"), struct.unpack(">I", data[i + 4 : i + 8])[0]
        payload = data[i + 8 : i + n]
        if payload[:8] == b"\x89PNG\r\n\x1a\n":
            out[ostype] = struct.unpack(">II", payload[16:24])  # IHDR width, height
        i += n
    return out
