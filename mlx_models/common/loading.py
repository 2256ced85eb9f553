"""The shared load path of every family: config -> model -> (quantized) weights -> checked load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from ..device import gpu_failure
from .bundle import EmbeddingModel
from .config import read_json
from .errors import DeviceError, ModelError
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
    try:
        model = build(cfg)  # validates the config before anything large is allocated
        weights = sanitize(load_safetensors(path))
        apply_recorded_quantization(model, cfg, weights)
        check_weights(model, weights, path)
        model.load_weights(list(weights.items()))
        model.eval()
        mx.eval(model.parameters())
    except ModelError:
        raise
    except Exception as e:  # building or evaluating may be the first call that touches Metal
        if (reason := gpu_failure(e)) is None:
            raise
        raise DeviceError(f"{path}: {reason}") from e
    return cfg, model


def load_embedding_model(
    path: Path,
    model_type: str,
    build: Callable[[dict[str, Any]], nn.Module],
    sanitize: Callable[[dict], dict],
    image_processor: Any,
    tokenizer: Any,
) -> EmbeddingModel:
    """A dual encoder folder: the checked model plus the processor and tokenizer read from the same folder.

    `image_processor` and `tokenizer` are the family's classes (each has `from_folder`); the model's
    config must expose `embed_dim`, the width of the shared embedding space.
    """
    path = Path(path)
    _, model = load_module(path, build, sanitize)
    return EmbeddingModel(
        model_type=model_type,
        path=path,
        config=model.config,
        model=model,
        embed_dim=model.config.embed_dim,
        preprocess=image_processor.from_folder(path),
        tokenize=tokenizer.from_folder(path),
    )
