"""Paths as stored text: UTF-8 always, names that are not valid UTF-8 escaped reversibly."""

from __future__ import annotations

import re
from pathlib import Path


def path_to_text(path: str | Path) -> str:
    """A filesystem path as storable UTF-8 text, reversibly.

    Undecodable bytes arrive as lone surrogates (U+DC80..U+DCFF, PEP 383) that SQLite cannot hold;
    each becomes U+FFFD + two hex digits, and a literal U+FFFD is doubled so the mapping stays one-to-one.
    """
    s = str(path)
    if not any(0xD800 <= ord(c) <= 0xDFFF or c == "\ufffd" for c in s):
        return s
    out = []
    for c in s:
        if 0xDC80 <= ord(c) <= 0xDCFF:
            out.append(f"\ufffd{ord(c) - 0xDC00:02X}")
        elif c == "\ufffd":
            out.append("\ufffd\ufffd")
        else:
            out.append(c)
    return "".join(out)


def text_to_path(text: str) -> Path:
    """Inverse of `path_to_text`."""
    if "\ufffd" not in text:
        return Path(text)
    pieces = re.split(r"(\ufffd\ufffd|\ufffd[0-9A-F]{2})", text)
    return Path(
        "".join(
            "\ufffd" if p == "\ufffd\ufffd" else chr(0xDC00 + int(p[1:], 16)) if p.startswith("\ufffd") else p
            for p in pieces
        )
    )
