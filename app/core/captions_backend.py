"""Captioners behind one small protocol: an image and a prompt in, generated text and token ids out.

`mlx` runs our MLX LLaVA port (Metal on macOS, CPU elsewhere); `torch` runs the checkpoint through
transformers' LlavaForConditionalGeneration (CUDA when present) and is the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import mlx_models
from mlx_models.common.errors import ModelError

from PIL import Image

from app.core.backends import resolve_backend
from app.core.backends.ids import model_id_for
from app.core.errors import BackendError, UsageError

DEFAULT_PROMPT = "Describe this image in one sentence."


@dataclass(frozen=True)
class CaptionResult:
    """Generated text (special tokens removed, stripped) and the generated token ids, EOS included if reached."""

    text: str
    tokens: list[int] = field(default_factory=list)


@runtime_checkable
class Captioner(Protocol):
    model_id: str  # the caption model's identity: captions are stored per model

    def caption(
        self, image: Image.Image, prompt: str, max_tokens: int, temperature: float = 0.0, top_p: float = 1.0
    ) -> CaptionResult:
        """Apply the checkpoint's chat template to [image, prompt] and generate; greedy at temperature 0."""
        ...


def check_sampling(max_tokens: int, temperature: float, top_p: float) -> None:
    if not isinstance(max_tokens, int) or max_tokens < 1 or max_tokens > 4096:
        raise UsageError(f"max_tokens={max_tokens!r} must be an integer in [1, 4096]")
    if not 0 <= temperature <= 10:
        raise UsageError(f"temperature={temperature!r} must be in [0, 10]")
    if not 0 < top_p <= 1:
        raise UsageError(f"top_p={top_p!r} must be in (0, 1]")


class MlxCaptioner:
    """`Captioner` over a LLaVA folder (MLX, or an HF folder with safetensors)."""

    name = "mlx"

    def __init__(self, folder: Path, seed: int | None = None) -> None:
        try:
            bundle = mlx_models.load(folder)
        except ModelError as e:
            raise BackendError(str(e)) from e
        except ImportError as e:  # mlx-lm's package imports transformers, which the packaged app leaves out
            raise BackendError(
                f"captioning needs mlx-lm and its dependencies ({e}); pip install fovea-search"
            ) from e
        if getattr(bundle, "model_type", None) != "llava":
            raise BackendError(f"{folder}: not a captioning (llava) model")
        self.bundle = bundle
        self.model_id = model_id_for(folder)
        self.seed = seed

    def caption(
        self, image: Image.Image, prompt: str, max_tokens: int, temperature: float = 0.0, top_p: float = 1.0
    ) -> CaptionResult:
        check_sampling(max_tokens, temperature, top_p)
        try:
            tokens = self.bundle.generate(
                image, prompt, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=self.seed
            )
        except ModelError as e:
            raise BackendError(str(e)) from e
        return CaptionResult(self.bundle.decode(tokens), tokens)


def open_captioner(model_path: str | Path, backend: str = "auto") -> Captioner:
    """The captioner for a LLaVA folder on the chosen backend (`auto`: torch with CUDA, else mlx)."""
    if resolve_backend(backend) == "torch":
        from app.core.backends.torch_captioner import TorchCaptioner

        return TorchCaptioner(Path(model_path))
    return MlxCaptioner(Path(model_path))
