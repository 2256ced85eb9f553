"""Reading safetensors weight files (single or sharded) and checking them against a model."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from ..device import gpu_failure
from .errors import DeviceError, WeightsError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def shard_names(index: Path) -> list[str]:
    """The shard file names an HF `*.index.json` maps weights to (safetensors or pickle)."""
    try:
        return sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))
    except (OSError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{index}: unreadable shard index ({e})") from e


def safetensors_files(folder: Path) -> list[Path]:
    """The safetensors files of a checkpoint folder, honouring a shard index when present."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        files = [folder / s for s in shard_names(index)]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise WeightsError(f"{index}: shard files missing: {', '.join(missing)}")
        return files
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickles = (
            sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES) if folder.is_dir() else []
        )
        hint = f" (found pickle checkpoint {pickles[0]}; convert it with --allow-pickle)" if pickles else ""
        raise WeightsError(f"{folder}: no .safetensors weights{hint}")
    return files


def load_safetensors(folder: Path) -> dict[str, mx.array]:
    """All tensors of a folder's safetensors files, by name."""
    weights: dict[str, mx.array] = {}
    for f in safetensors_files(folder):
        try:
            weights.update(mx.load(str(f)))
        except Exception as e:  # mlx raises RuntimeError/ValueError for corrupt files
            if (reason := gpu_failure(e)) is not None:  # mx.load is often the first call to touch Metal
                raise DeviceError(f"{f}: {reason}") from e
            raise WeightsError(f"{f}: not a readable safetensors file ({e})") from e
    return weights


def check_weights(model: nn.Module, weights: dict[str, mx.array], where: str | Path) -> None:
    """Refuse weights that do not match the model exactly: every key present, every shape equal."""
    expected = dict(tree_flatten(model.parameters()))
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing:
        raise WeightsError(f"{where}: {len(missing)} weights missing, e.g. {', '.join(missing[:3])}")
    if unexpected:
        raise WeightsError(f"{where}: {len(unexpected)} unexpected weights, e.g. {', '.join(unexpected[:3])}")
    for k, v in expected.items():
        if tuple(weights[k].shape) != tuple(v.shape):
            raise WeightsError(
                f"{where}: weight {k} has shape {tuple(weights[k].shape)}, the config implies {tuple(v.shape)}"
            )
