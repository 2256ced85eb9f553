"""LLaVA captioning in MLX: a CLIP/SigLIP vision tower, a projector and an mlx-lm language model."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .. import runtime  # noqa: F401  (prepares BLAS before mlx is imported below)
from ..common.config import read_json
from ..common.loading import load_module
from .config import ModelConfig
from .generate import CaptionModel, generate_tokens
from .model import LlavaModel, sanitize
from .prompt import PROCESSOR_FILES, TOKENIZER_FILES, ChatPrompt

__all__ = [
    "PROCESSOR_FILES",
    "TOKENIZER_FILES",
    "CaptionModel",
    "ChatPrompt",
    "LlavaModel",
    "ModelConfig",
    "build_model",
    "eos_token_ids",
    "generate_tokens",
    "image_processor",
    "load",
    "sanitize",
]


def build_model(cfg: dict[str, Any]) -> LlavaModel:
    """Validate a config.json dict, then build the model (uninitialised)."""
    return LlavaModel(ModelConfig.from_dict(cfg))


def image_processor(path: Path, config: ModelConfig) -> Any:
    """The CLIP or SigLIP image processor the checkpoint names (by processor type, else by tower)."""
    kind = config.tower
    for name in ("preprocessor_config.json", "processor_config.json"):
        if (path / name).is_file():
            d = read_json(path / name)
            t = str((d.get("image_processor") or d).get("image_processor_type", "")).lower()
            kind = "siglip" if t.startswith("siglip") else "clip" if t.startswith("clip") else kind
            break
    if kind == "siglip":
        from ..siglip import ImageProcessor
    else:
        from ..clip import ImageProcessor
    return ImageProcessor.from_folder(path)


def eos_token_ids(path: Path, config: ModelConfig, prompt: ChatPrompt) -> tuple[int, ...]:
    """generation_config.json's eos_token_id (what transformers' generate stops on), else the config's, else the tokenizer's."""
    for src in (
        read_json(path / "generation_config.json") if (path / "generation_config.json").is_file() else {},
        config.text_config,
    ):
        eos = src.get("eos_token_id")
        if eos is not None:
            return tuple(eos) if isinstance(eos, list) else (int(eos),)
    tid = prompt.token_id(prompt.special_tokens.get("eos_token"))
    return () if tid is None else (tid,)


def load(path: str | Path) -> CaptionModel:
    """Load a LLaVA folder (MLX, or HF with safetensors: sanitize accepts every checkpoint layout)."""
    path = Path(path)
    config = ModelConfig.from_dict(read_json(path / "config.json"))
    _, model = load_module(
        path, build_model, functools.partial(sanitize, tie_word_embeddings=config.tie_word_embeddings)
    )
    prompt = ChatPrompt.from_folder(path)
    return CaptionModel(
        path=path,
        config=model.config,
        model=model,
        preprocess=image_processor(path, config),
        prompt=prompt,
        eos_token_ids=eos_token_ids(path, config, prompt),
    )
