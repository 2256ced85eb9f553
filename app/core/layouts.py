"""What a folder walk must know about Mac libraries, iCloud and file signatures; pure decisions, tested on Linux.

macOS keeps whole databases in package folders (a Photos library holds each photo 2-3 times: the
original plus derivatives), other apps' data under ~/Library, and since macOS 14 leaves iCloud files
"dataless" (name and size, no bytes: reading one downloads it).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

# System folders of NAS boxes, Windows and macOS; dot folders are skipped too.
SKIP_DIRS = frozenset(
    {"@eaDir", "#recycle", "#snapshot", "$RECYCLE.BIN", "System Volume Information", "lost+found"}
)
# Folders the Finder shows as one file: never walked into.
PACKAGE_SUFFIXES = frozenset(
    {".photoslibrary", ".photolibrary", ".migratedphotolibrary", ".aplibrary", ".app", ".lrdata"}
    | {".fcpbundle", ".imovielibrary", ".bundle", ".framework", ".plugin", ".tvlibrary", ".musiclibrary"}
)
PHOTOS_LIBRARY_SUFFIXES = (".photoslibrary", ".photolibrary", ".migratedphotolibrary")
SF_DATALESS = 0x40000000  # <sys/stat.h>: the file's data is in the cloud, not on this disk
# First bytes of the image formats we read, for files without an extension (from chats, recoveries).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM")
_MAGIC += (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51", b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")
_FTYP_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


def is_package(folder: Path) -> bool:
    """A macOS package (by suffix, or any folder holding Contents/Info.plist, as .app bundles do)."""
    return folder.suffix.lower() in PACKAGE_SUFFIXES or os.path.isfile(folder / "Contents" / "Info.plist")


def skipped_name(name: str) -> bool:
    """A folder name a walk never enters, whatever its contents (no disk access)."""
    return name.startswith(".") or name in SKIP_DIRS or os.path.splitext(name)[1].lower() in PACKAGE_SUFFIXES


def is_photos_library(folder: Path) -> bool:
    return folder.name.lower().endswith(PHOTOS_LIBRARY_SUFFIXES)


def photos_library_originals(folder: Path) -> Path | None:
    """The originals inside a Photos library: originals/ (Photos 5+, macOS 10.15+) or Masters/ (older)."""
    for name in ("originals", "Masters"):
        if (folder / name).is_dir():
            return folder / name
    return None


def never_walk(folder: Path, home: Path, own_dirs: tuple[Path, ...]) -> bool:
    """~/Library (caches, other apps' containers: macOS asks a permission per app) and Fovea's own data."""
    return folder == home / "Library" or folder in own_dirs


def is_dataless(st: os.stat_result) -> bool:
    """True for an iCloud file whose bytes are not on this disk (st_flags exists on macOS and BSD only)."""
    return bool(getattr(st, "st_flags", 0) & SF_DATALESS)


def looks_like_image(head: bytes) -> bool:
    """The first 16 bytes match one of the formats we read."""
    if head.startswith(_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in _FTYP_BRANDS


def access_hint(folder: Path, err: OSError, mac: bool = sys.platform == "darwin") -> str:
    """A refused folder: on a Mac, name the permission that lets Fovea read it."""
    if mac and err.errno in (errno.EPERM, errno.EACCES):
        return (
            f"macOS refused access to {folder}: allow Fovea under System Settings > Privacy & Security > "
            "Full Disk Access (or Files and Folders), then index it again"
        )
    return f"cannot read {folder}: {err.strerror or err}"
