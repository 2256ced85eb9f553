"""Token generation for LLaVA: one prefill with the image spliced in, then KV-cached decode steps.

Sampling goes through mlx-lm's `make_sampler` (greedy at temperature 0, else temperature + top-p).
Like transformers' `generate()` (and unlike mlx-lm's generator) the EOS token that stops generation is
returned as the last token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np
from PIL import Image

from ..lm_import import lm_module
from .config import ModelConfig
from .model import LlavaModel
from .prompt import ChatPrompt


def generate_tokens(
    model: LlavaModel,
    input_ids: list[int],
    pixel_values: mx.array | None,
    *,
    max_tokens: int,
    eos_token_ids: Iterable[int] = (),
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
) -> Iterator[int]:
    """Yield up to `max_tokens` new token ids, stopping after (and including) the first EOS."""
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    if max_tokens == 0:
        return
    eos = set(eos_token_ids)
    sampler = lm_module("sample_utils").make_sampler(temp=temperature, top_p=top_p if top_p < 1 else 0.0)
    cache = lm_module("models.cache").make_prompt_cache(model.language_model)

    def step(logits: mx.array) -> mx.array:
        logits = logits[:, -1, :].astype(mx.float32)  # (1, vocab): next-token scores
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        return sampler(logprobs)

    if seed is not None:
        mx.random.seed(seed)
    token = step(model(mx.array([input_ids], dtype=mx.int32), pixel_values, cache=cache))
    for n in range(max_tokens):
        tid = int(token.item())
        yield tid
        if tid in eos or n + 1 == max_tokens:
            return
        token = step(model.language_model(token.reshape(1, 1), cache=cache))


@dataclass
class CaptionModel:
    """A loaded LLaVA folder: model, image processor, chat prompt and stop tokens."""

    path: Path
    config: ModelConfig
    model: LlavaModel
    preprocess: Callable[[Image.Image], np.ndarray]  # one image -> (H, W, 3) float32
    prompt: ChatPrompt
    eos_token_ids: tuple[int, ...]
    model_type: str = "llava"

    def prompt_ids(self, prompt: str) -> list[int]:
        """The chat-templated prompt with the image token repeated once per image feature."""
        return self.prompt.encode(prompt, self.model.num_image_tokens())

    def generate(
        self,
        image: Image.Image,
        prompt: str,
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        eos_token_ids: Iterable[int] | None = None,
    ) -> list[int]:
        """Generated token ids for one image and one user prompt (EOS included when it stopped there)."""
        pixels = mx.array(self.preprocess(image)[None])  # (1, H, W, 3)
        eos = self.eos_token_ids if eos_token_ids is None else tuple(eos_token_ids)
        return list(
            generate_tokens(
                self.model, self.prompt_ids(prompt), pixels, max_tokens=max_tokens, eos_token_ids=eos,
                temperature=temperature, top_p=top_p, seed=seed,
            )
        )  # fmt: skip

    def decode(self, tokens: list[int]) -> str:
        return self.prompt.decode(tokens).strip()
