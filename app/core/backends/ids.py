"""Stable identity of an embedding space, shared by every backend that loads the same folder."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

MAX_HEADER = 64 << 20  # safetensors headers are kilobytes; a larger one is hashed up to here
TENSOR_SAMPLE = 4096  # bytes hashed from the start of every tensor's data


def model_id_for(folder: Path) -> str:
    """`<folder name>-<hash>`: the hash covers config.json and each weight file's safetensors header
    and the first 4 KiB of every tensor's data.

    Headers hold every tensor's name, dtype, shape and offsets, so re-quantizing or re-converting
    changes the id. A retrained model of the same architecture has the same header, so the id also
    reads the start of every tensor (its values change with any training), while hashing stays cheap
    for multi-GB files. config.json's "fovea" section is left out: Fovea's notes about a model
    (weak-match calibration, known words) do not change its embedding space, so re-measuring them
    must not re-embed a library.
    """
    import json

    folder = Path(folder)
    h = hashlib.sha256()
    cfg = json.loads((folder / "config.json").read_bytes())
    if isinstance(cfg, dict):
        cfg.pop("fovea", None)
    h.update(json.dumps(cfg, sort_keys=True).encode())
    for f in sorted(folder.glob("*.safetensors")):
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = fh.read(min(n, MAX_HEADER))
            h.update(header)
            for start, end in _tensor_ranges(header) if n <= MAX_HEADER else ():
                fh.seek(8 + n + start)
                h.update(fh.read(min(end - start, TENSOR_SAMPLE)))
        h.update(str(f.stat().st_size).encode())
    return f"{folder.name}-{h.hexdigest()[:12]}"


def _tensor_ranges(header: bytes) -> list[tuple[int, int]]:
    """Each tensor's (start, end) within the data section, in name order; [] for an unreadable header."""
    import json

    try:
        entries = json.loads(header)
        return [
            (int(v["data_offsets"][0]), int(v["data_offsets"][1]))
            for k, v in sorted(entries.items())
            if k != "__metadata__"
        ]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return []


def model_note(folder: Path, key: str) -> Any:
    """config.json "fovea"/`key` of a model folder: what Fovea noted about the model (its calibrations,
    its words, its vocabulary), which its id leaves out; None when absent or unreadable."""
    import json

    try:
        return (
            json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("fovea", {}).get(key)
        )
    except (OSError, ValueError, AttributeError):
        return None


def search_hints(folder: Path) -> dict[str, float]:
    """Per-model weak-hit cosines measured when the model was made (config.json "fovea"/"weak_cosine").

    CLIP-family cosines depend on the model (a small demo CLIP's matches sit near 0.8, ViT-B/32's
    near 0.3), so a model folder may carry its own; {} means the search engine's family defaults.
    """
    hints = model_note(folder, "weak_cosine") or {}
    return {k: float(v) for k, v in hints.items() if k in ("text", "image")}
