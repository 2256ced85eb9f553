"""Config dataclasses mirror Hugging Face `config.json`; these helpers build and validate them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass `cls` from a config dict, dropping keys it does not declare."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def check_range(name: str, value: Any, lo: float, hi: float) -> None:
    """Refuse a config value outside [lo, hi] before anything is allocated from it."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (lo <= value <= hi):
        raise ConfigError(f"config {name}={value!r} is outside the allowed range [{lo}, {hi}]")


def check_int(name: str, value: Any, lo: int, hi: int) -> None:
    """Refuse a size that is not an integer in [lo, hi] (64.0 is refused too: layer shapes are counts)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"config {name}={value!r} must be an integer in [{lo}, {hi}]")
    check_range(name, value, lo, hi)


def check_divisible(name: str, value: int, by_name: str, by: int) -> None:
    if by <= 0 or value % by:
        raise ConfigError(f"config {name}={value} must be divisible by {by_name}={by}")


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, naming the file in any error."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: file not found") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def read_image_processor_config(path: Path) -> dict[str, Any]:
    """preprocessor_config.json, or the `image_processor` entry of processor_config.json (newer saves)."""
    path = Path(path)
    if (path / "preprocessor_config.json").exists():
        return read_json(path / "preprocessor_config.json")
    if (path / "processor_config.json").exists():
        d = read_json(path / "processor_config.json").get("image_processor")
        if isinstance(d, dict):
            return d
    raise ConfigError(
        f"{path}: no preprocessor_config.json (or processor_config.json with an image_processor)"
    )
