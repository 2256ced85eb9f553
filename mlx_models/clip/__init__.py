"""CLIP (OpenAI's contrastive image-text model) in MLX, loaded from Hugging Face-layout folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import runtime  # noqa: F401  (prepares BLAS before mlx is imported below)
from ..common.bundle import EmbeddingModel
from ..common.loading import load_embedding_model
from .config import ModelConfig, TextConfig, VisionConfig
from .image_processor import ImageProcessor
from .model import Model, sanitize
from .tokenizer import TOKENIZER_FILES, Tokenizer, prepare_tokenizer

PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def build_model(cfg: dict[str, Any]) -> Model:
    """Validate a config.json dict, then build the (uninitialised) model; nothing is allocated on refusal."""
    return Model(ModelConfig.from_dict(cfg))


def load(path: str | Path) -> EmbeddingModel:
    """Load a CLIP folder (MLX, or HF with safetensors) with its image processor and tokenizer."""
    return load_embedding_model(Path(path), "clip", build_model, sanitize, ImageProcessor, Tokenizer)


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
