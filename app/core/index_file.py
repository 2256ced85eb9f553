"""The search index persisted beside the library, so a new process answers without rebuilding it.

One file per (library, model): a fixed preamble (magic, header length, header CRC-32), a JSON header,
then the index arrays at 64-byte aligned offsets, mapped copy-on-write (`np.memmap` mode "c": the
process may grow or prune its index in memory; the file changes only by an atomic replace).

A file is trusted only if everything matches: format version, model id, dimension, the store's
`vectors_generation` (bumped by triggers on every change the file cannot replay by rowid), the
header CRC and a 64-bit XXH3 digest of every array (xxhash: ~10 GB/s, so checking 51 MiB costs ~5 ms
where zlib's CRC-32 took ~25-60 ms, most of a cold start at 100k). Anything else raises `IndexFileError`, and the caller
rebuilds from the store. Rows the store gained after the file's `last_rowid` are appended on load.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash

from app.core.atomic import atomic_write
from app.core.errors import FoveaError
from app.core.vector_index import IndexConfig, VectorIndex

FORMAT_VERSION = 2  # 2: XXH3-64 digests of the arrays (1 had CRC-32s; such a file is rebuilt)
_MAGIC = b"FOVEAIX\x00"
_PREAMBLE = struct.Struct("<8sII")  # magic, header length, header CRC-32
_ALIGN = 64
_ARRAYS = ("ids", "pre", "rest", "sp", "sr", "rot")


class IndexFileError(FoveaError):
    """A persisted index that is missing, stale or damaged (the caller rebuilds; never shown as a failure)."""


@dataclass(frozen=True)
class LoadedIndex:
    index: VectorIndex
    last_rowid: int  # the store rowid up to which the file holds every 'ok' embedding


def index_path(db_path: str | Path, model_id: str) -> Path:
    """`<library>.sqlite.<model>-<hash>.fvx`, next to the database (one per model space)."""
    db = Path(db_path)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)[:40]
    digest = hashlib.sha1(model_id.encode("utf-8")).hexdigest()[:10]
    return db.with_name(f"{db.name}.{slug}-{digest}.fvx")


def _digest(a: np.ndarray) -> int:
    """XXH3-64 of the array's bytes (a map is hashed in place: no temporary)."""
    return xxhash.xxh3_64_intdigest(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


def save_index(
    path: str | Path, index: VectorIndex, *, generation: int, last_rowid: int, model_id: str
) -> None:
    """Write the index's live rows atomically (temporary file, fsync, rename)."""
    path = Path(path)
    arrays = index.export_arrays()
    header: dict = {
        "version": FORMAT_VERSION,
        "model_id": model_id,
        "dim": index.dim,
        "prefix_dims": index.split,
        "generation": int(generation),
        "last_rowid": int(last_rowid),
        "fitted_at": index.fitted_at,
        "arrays": {},
    }
    offset = 0
    for name in _ARRAYS:
        a = arrays.get(name)
        if a is None:
            continue
        header["arrays"][name] = {
            "offset": offset,
            "dtype": a.dtype.str,
            "shape": list(a.shape),
            "xxh3": _digest(a),
        }
        offset += -(-a.nbytes // _ALIGN) * _ALIGN
    text = json.dumps(header).encode("utf-8")
    start = -(-(_PREAMBLE.size + len(text)) // _ALIGN) * _ALIGN  # the arrays' base offset
    with atomic_write(path, durable=True) as f:
        f.write(_PREAMBLE.pack(_MAGIC, len(text), zlib.crc32(text)) + text)
        for name in _ARRAYS:
            a = arrays.get(name)
            if a is None:
                continue
            f.seek(start + header["arrays"][name]["offset"])
            f.write(np.ascontiguousarray(a).tobytes())
        f.truncate(start + offset)


def read_header(path: str | Path) -> dict:
    """The JSON header of an index file (model, generation, ...), checked by its CRC; IndexFileError else."""
    try:
        with open(path, "rb") as f:
            magic, hlen, hcrc = _PREAMBLE.unpack(f.read(_PREAMBLE.size))
            text = f.read(hlen)
        if magic != _MAGIC or len(text) != hlen or zlib.crc32(text) != hcrc:
            raise IndexFileError(f"{path}: not an index file or its header is damaged")
        return json.loads(text)
    except (OSError, struct.error, ValueError) as e:
        raise IndexFileError(f"{path}: unreadable ({e})") from e


def load_index(
    path: str | Path, *, model_id: str, dim: int, generation: int, config: IndexConfig | None = None
) -> LoadedIndex:
    """The persisted index if it is intact and current for this store generation, else IndexFileError."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic, hlen, hcrc = _PREAMBLE.unpack(f.read(_PREAMBLE.size))
            text = f.read(hlen)
        size = path.stat().st_size
    except FileNotFoundError as e:
        raise IndexFileError(f"{path}: no index file") from e
    except (OSError, struct.error) as e:
        raise IndexFileError(f"{path}: unreadable ({e})") from e
    if magic != _MAGIC or len(text) != hlen or zlib.crc32(text) != hcrc:
        raise IndexFileError(f"{path}: not an index file or its header is damaged")
    try:
        h = json.loads(text)
        want = {"version": FORMAT_VERSION, "model_id": model_id, "dim": dim, "generation": generation}
        for key, value in want.items():
            if h[key] != value:
                raise IndexFileError(f"{path}: {key} is {h[key]!r}, the library needs {value!r}")
        start = -(-(_PREAMBLE.size + hlen) // _ALIGN) * _ALIGN
        arrays = {}
        for name, spec in h["arrays"].items():
            shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
            end = start + spec["offset"] + int(np.prod(shape)) * dtype.itemsize
            if end > size:
                raise IndexFileError(f"{path}: truncated ({size} bytes, {name} needs {end})")
            if int(np.prod(shape)) == 0:  # nothing to map (an empty index, a zero-width block)
                a = np.empty(shape, dtype)
            else:
                a = np.memmap(path, dtype=dtype, mode="c", offset=start + spec["offset"], shape=shape)
            if _digest(a) != spec["xxh3"]:
                raise IndexFileError(f"{path}: checksum of {name} does not match")
            arrays[name] = a
        index = VectorIndex.from_arrays(
            dim, arrays, prefix_dims=h["prefix_dims"], fitted_at=h["fitted_at"], config=config
        )
        return LoadedIndex(index, int(h["last_rowid"]))
    except IndexFileError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise IndexFileError(f"{path}: damaged header ({e})") from e
