"""What loading an embedding model folder gives: the model and its matching pre-processing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.nn as nn
import numpy as np


@dataclass(frozen=True)
class TokenBatch:
    """Token ids and attention mask, both int32 (N, L), padded to one length."""

    input_ids: np.ndarray
    attention_mask: np.ndarray


@dataclass
class EmbeddingModel:
    """An MLX dual-encoder (CLIP or SigLIP) with its processor and tokenizer.

    `model.get_image_features(pixels NHWC)` and `model.get_text_features(ids, mask)` return
    *unnormalised* projected embeddings, as transformers does.
    """

    model_type: str
    path: Path
    config: Any
    model: nn.Module
    embed_dim: int  # width of the projected (shared) embedding space
    preprocess: Callable[..., np.ndarray]  # one image (and optionally its full size) -> (H, W, 3) float32
    tokenize: Callable[[Sequence[str]], TokenBatch]
