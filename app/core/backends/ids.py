"""Stable identity of an embedding space, shared by every backend that loads the same folder."""

from __future__ import annotations

import hashlib
from pathlib import Path


def model_id_for(folder: Path) -> str:
    """`<folder name>-<hash>`: the hash covers config.json and each weight file's safetensors header.

    Headers hold every tensor's name, dtype, shape and offsets, so re-quantizing or re-converting
    changes the id, while hashing stays cheap for multi-GB files.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    h.update((folder / "config.json").read_bytes())
    for f in sorted(folder.glob("*.safetensors")):
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            h.update(fh.read(min(n, 64 << 20)))
        h.update(str(f.stat().st_size).encode())
    return f"{folder.name}-{h.hexdigest()[:12]}"
