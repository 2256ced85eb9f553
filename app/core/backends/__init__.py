"""Embedding backends behind one small protocol, and the choice between them.

`mlx` runs our MLX port (Metal on macOS, CPU elsewhere); `torch` runs the original checkpoint
through transformers (CUDA when present, else CPU) and is the reference for testing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from app.core.errors import BackendError

BACKENDS = ("auto", "mlx", "torch")


@runtime_checkable
class Embedder(Protocol):
    """A dual encoder. Every embedding it returns is float32 and L2-normalised, one row per input."""

    model_id: str  # identifies the embedding space: a change of model re-embeds, never mixes spaces
    model_type: str  # "clip" (softmax over labels) or "siglip" (independent sigmoids)
    dim: int
    logit_scale: float  # already exponentiated, as used on cosine similarities
    logit_bias: float | None  # SigLIP only

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One RGB image -> the model's (H, W, 3) float32 input; thread-safe, for decode workers."""
        ...

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float32 from `preprocess` -> (N, dim) normalised."""
        ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB images -> (N, dim) normalised."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (N, dim) normalised."""
        ...


def torch_cuda_available() -> bool:
    """True when torch is importable and sees a CUDA device (imports torch only if installed)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_backend(name: str) -> str:
    """`auto` picks torch where torch and CUDA are present and mlx everywhere else."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
    if name == "auto":
        return "torch" if torch_cuda_available() else "mlx"
    return name


def open_embedder(model_path: str | Path, backend: str = "auto") -> Embedder:
    """Create the embedder for a model folder on the chosen backend."""
    chosen = resolve_backend(backend)
    if chosen == "torch":
        from .torch_backend import TorchEmbedder

        return TorchEmbedder(Path(model_path))
    from .mlx_backend import MlxEmbedder

    return MlxEmbedder(Path(model_path))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, in float32 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)
