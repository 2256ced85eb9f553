"""The shared load path of every family: config -> model -> (quantized) weights -> checked load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from .config import read_json
from .quant import apply_recorded_quantization
from .weights import check_weights, load_safetensors


def load_module(
    path: Path, build: Callable[[dict[str, Any]], nn.Module], sanitize: Callable[[dict], dict]
) -> tuple[dict[str, Any], nn.Module]:
    """Build a family's model from `path/config.json` and load its safetensors, refusing any mismatch.

    `sanitize` runs here too (it is idempotent), so an HF folder with the original names also loads.
    """
    path = Path(path)
    cfg = read_json(path / "config.json")
    model = build(cfg)  # validates the config before anything large is allocated
    weights = sanitize(load_safetensors(path))
    apply_recorded_quantization(model, cfg, weights)
    check_weights(model, weights, path)
    model.load_weights(list(weights.items()))
    model.eval()
    mx.eval(model.parameters())
    return cfg, model
