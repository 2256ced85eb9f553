"""MLX ports of the models Fovea runs: CLIP, SigLIP (and LLaVA for captions).

Importing this package prepares the MLX runtime first (see `runtime`), so import it before `mlx`.
"""

from __future__ import annotations

from . import runtime  # noqa: F401  (must run before anything imports mlx)
from .registry import SUPPORTED_MODEL_TYPES, load, load_tokenizer, read_config

__all__ = ["SUPPORTED_MODEL_TYPES", "load", "load_tokenizer", "read_config", "runtime"]
