"""Dispatch from a model folder's `model_type` to the family that loads it."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from .common.config import read_json
from .common.errors import ConfigError

# model_type -> subpackage exposing `load(path) -> ...`
_FAMILIES = {"clip": "clip", "siglip": "siglip", "llava": "llava"}
SUPPORTED_MODEL_TYPES = tuple(_FAMILIES)


def read_config(path: str | Path) -> dict[str, Any]:
    """config.json of a model folder, with a known `model_type`."""
    cfg = read_json(Path(path) / "config.json")
    mt = cfg.get("model_type")
    if mt not in _FAMILIES:
        raise ConfigError(
            f"{Path(path) / 'config.json'}: unsupported model_type {mt!r} (supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
        )
    return cfg


def family_module(model_type: str) -> ModuleType:
    """The subpackage that builds, sanitizes and loads `model_type`."""
    if model_type not in _FAMILIES:
        raise ConfigError(
            f"unsupported model_type {model_type!r} (supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
        )
    return importlib.import_module(f"{__package__}.{_FAMILIES[model_type]}")


def load(path: str | Path) -> Any:
    """Load an MLX model folder written by `converters.convert`."""
    path = Path(path)
    cfg = read_config(path)
    return family_module(cfg["model_type"]).load(path)


def load_tokenizer(path: str | Path) -> Any:
    """The tokenizer of an embedding model folder alone (no weights): the family's `Tokenizer.from_folder`."""
    path = Path(path)
    cfg = read_config(path)
    return family_module(cfg["model_type"]).Tokenizer.from_folder(path)
