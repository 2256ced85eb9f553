"""SigLIP (google/siglip-*) in MLX: config, model, sanitize, image processor, tokenizer and `load`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..common.bundle import EmbeddingModel
from ..common.loading import load_embedding_model
from .config import ModelConfig, TextConfig, VisionConfig
from .image_processor import PROCESSOR_FILES, ImageProcessor
from .model import Model, sanitize
from .tokenizer import TOKENIZER_FILES, Tokenizer, prepare_tokenizer

__all__ = [
    "PROCESSOR_FILES",
    "TOKENIZER_FILES",
    "ImageProcessor",
    "Model",
    "ModelConfig",
    "TextConfig",
    "Tokenizer",
    "VisionConfig",
    "build_model",
    "load",
    "prepare_tokenizer",
    "sanitize",
]


def build_model(cfg: dict[str, Any]) -> Model:
    """Validate the config.json dict (ConfigError on anything absurd), then allocate the model."""
    return Model(ModelConfig.from_dict(cfg))


def load(path: str | Path) -> EmbeddingModel:
    """Load an MLX SigLIP folder (an HF folder loads too: sanitize is idempotent)."""
    return load_embedding_model(Path(path), "siglip", build_model, sanitize, ImageProcessor, Tokenizer)
