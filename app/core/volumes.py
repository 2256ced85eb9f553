"""What kind of volume holds a library file: local, network (SMB, NFS, AFP, WebDAV) or FUSE.

SQLite's WAL mode needs shared memory that works only between processes of one machine; on a
network or FUSE volume the store uses a rollback journal instead, whose file locks the server
arbitrates (see `Store`). Mac-only code stays thin: the platform readers return raw facts
(a Linux statfs magic number; macOS `f_fstypename` and the MNT_LOCAL flag), and `classify`, tested
with fakes, decides.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class VolumeKind(str, Enum):
    LOCAL = "local"
    NETWORK = "network"
    FUSE = "fuse"
    UNKNOWN = "unknown"  # statfs failed: treated as local (WAL), as before


@dataclass(frozen=True)
class FsFacts:
    """What statfs says: a Linux magic number, or a macOS type name and whether MNT_LOCAL is set."""

    magic: int | None = None
    type_name: str | None = None
    local_flag: bool | None = None


# linux/magic.h and the file systems' own headers.
LINUX_NETWORK = {
    0x6969: "nfs",
    0x517B: "smb",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x564C: "ncp",
    0x5346414F: "afs",
    0x6B414653: "kafs",
    0x73757245: "coda",
    0x00C36400: "ceph",
    0x01021997: "9p",
    0x0BD00BD0: "lustre",
    0x7461636F: "ocfs2",
    0x01161970: "gfs2",
}
LINUX_FUSE = 0x65735546
MAC_NETWORK = {"nfs", "smbfs", "afpfs", "webdav", "cifs", "ftp", "autofs_nfs"}
MAC_FUSE_PREFIXES = ("osxfuse", "macfuse", "fusefs", "fuse")
MNT_LOCAL = 0x00001000  # sys/mount.h


def classify(facts: FsFacts) -> VolumeKind:
    """The decision, from statfs facts alone (tested on Linux with fakes of both platforms)."""
    if facts.magic is not None:
        if facts.magic == LINUX_FUSE:
            return VolumeKind.FUSE
        return VolumeKind.NETWORK if facts.magic in LINUX_NETWORK else VolumeKind.LOCAL
    name = (facts.type_name or "").lower()
    if name.startswith(MAC_FUSE_PREFIXES):
        return VolumeKind.FUSE
    if name in MAC_NETWORK or facts.local_flag is False:
        return VolumeKind.NETWORK
    return VolumeKind.LOCAL if name or facts.local_flag else VolumeKind.UNKNOWN


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def linux_facts(path: str | Path) -> FsFacts:
    """statfs(2): `f_type` is the first field, a `long`, on every 64-bit Linux ABI."""
    buf = ctypes.create_string_buffer(512)  # larger than struct statfs on any ABI
    if _libc().statfs(os.fsencode(path), buf) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(path))
    return FsFacts(magic=ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF)


# macOS struct statfs (64-bit inodes, the only layout on arm64): f_flags at 64, f_fstypename[16] at 72.
_MAC_FLAGS, _MAC_TYPENAME, _MAC_SIZE = 64, 72, 2168


def mac_facts(path: str | Path) -> FsFacts:
    """statfs(2) on macOS: the type name ("apfs", "smbfs", "macfuse", ...) and MNT_LOCAL. Verified
    on paper only (no Mac here): the offsets follow <sys/mount.h>'s struct statfs."""
    buf = ctypes.create_string_buffer(_MAC_SIZE + 256)
    if _libc().statfs(os.fsencode(path), buf) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(path))
    return facts_from_mac_statfs(buf.raw)


def facts_from_mac_statfs(raw: bytes) -> FsFacts:
    flags = int.from_bytes(raw[_MAC_FLAGS : _MAC_FLAGS + 4], sys.byteorder)
    name = raw[_MAC_TYPENAME : _MAC_TYPENAME + 16].split(b"\0", 1)[0].decode("ascii", "replace")
    return FsFacts(type_name=name, local_flag=bool(flags & MNT_LOCAL))


def volume_kind(path: str | Path) -> VolumeKind:
    """The kind of volume holding `path` (its nearest existing folder when it does not exist yet)."""
    from app.core.faults import existing_ancestor

    target = existing_ancestor(path)
    try:
        if sys.platform.startswith("linux"):
            return classify(linux_facts(target))
        if sys.platform == "darwin":
            return classify(mac_facts(target))
    except (OSError, AttributeError):
        pass
    return VolumeKind.UNKNOWN
