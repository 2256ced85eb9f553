"""LLaVA in MLX: vision tower -> multimodal projector -> image features spliced into an mlx-lm language model.

Attribute names are the checkpoint's (`vision_tower.vision_model.*`, `multi_modal_projector.linear_1`,
`language_model.model.*`, `language_model.lm_head`), so loading is `sanitize` + `load_weights`.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..common.activations import ACTIVATIONS
from ..common.errors import ModelError
from ..lm_import import lm_module
from .config import LANGUAGE_MODELS, ModelConfig
from .vision import VisionTower

PROJECTOR_ACTS = {k: ACTIVATIONS[k] for k in ("gelu", "gelu_pytorch_tanh", "quick_gelu", "silu", "relu")}


class MultiModalProjector(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d_in = int(config.vision_config["hidden_size"]) * len(config.feature_layers)
        d_out = int(config.text_config["hidden_size"])
        self.linear_1 = nn.Linear(d_in, d_out, bias=config.multimodal_projector_bias)
        self.act = PROJECTOR_ACTS[config.projector_hidden_act]
        self.linear_2 = nn.Linear(d_out, d_out, bias=config.multimodal_projector_bias)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear_2(self.act(self.linear_1(x)))


def build_language_model(config: ModelConfig) -> nn.Module:
    """The mlx-lm architecture named by text_config.model_type, with mlx-lm's own names (`model`, `lm_head`)."""
    arch = lm_module(f"models.{LANGUAGE_MODELS[config.text_config['model_type']]}")
    return arch.Model(arch.ModelArgs.from_dict(config.lm_args()))


class LlavaModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.vision_tower = VisionTower(config.tower, config.vision_config)
        self.multi_modal_projector = MultiModalProjector(config)
        self.language_model = build_language_model(config)

    def get_image_features(self, pixel_values: mx.array) -> mx.array:
        """(N, H, W, C) pixels -> (N, T, text hidden) projected features, one per image-token position."""
        feats = self.vision_tower(pixel_values, self.config.feature_layers)
        if self.config.vision_feature_select_strategy == "default":
            feats = feats[:, 1:]  # drop the CLS / first position
        return self.multi_modal_projector(feats)

    def num_image_tokens(self) -> int:
        """How many `<image>` positions one image fills (the processor repeats the token this often)."""
        vm = self.vision_tower.vision_model
        n = vm.embeddings.position_embedding.weight.shape[0]  # patches (+ CLS for CLIP)
        return n - (self.config.vision_feature_select_strategy == "default")

    def embed_inputs(self, input_ids: mx.array, pixel_values: mx.array | None = None) -> mx.array:
        """(B, L) ids -> (B, L, D) token embeddings with image features written at the image-token positions."""
        embeds = self.language_model.model.embed_tokens(input_ids)
        if pixel_values is None:
            return embeds
        feats = self.get_image_features(pixel_values)  # (N, T, D)
        B, L, D = embeds.shape
        positions = np.flatnonzero(np.array(input_ids).reshape(-1) == self.config.image_token_index)
        if positions.size != feats.shape[0] * feats.shape[1]:
            raise ModelError(
                f"prompt has {positions.size} image tokens but the images give {feats.shape[0] * feats.shape[1]} features"
            )
        flat = embeds.reshape(
            B * L, D
        )  # (B*L, D): features fill the image positions in order, like masked_scatter
        flat[mx.array(positions)] = feats.reshape(-1, D).astype(flat.dtype)
        return flat.reshape(B, L, D)

    def __call__(
        self, input_ids: mx.array, pixel_values: mx.array | None = None, cache: list[Any] | None = None
    ) -> mx.array:
        """(B, L) ids (+ images for the prompt) -> (B, L, vocab) logits; `cache` is mlx-lm's KV cache."""
        embeds = self.embed_inputs(input_ids, pixel_values)
        return self.language_model(input_ids, cache=cache, input_embeddings=embeds)


_PREFIXES = (  # transformers 5 in-memory names -> the hub (4.x) names we keep
    ("model.language_model.", "language_model.model."),
    ("model.vision_tower.", "vision_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
    ("lm_head.", "language_model.lm_head."),
)


def _is_torch_conv(shape: tuple[int, ...]) -> bool:
    # PyTorch [out, in, k, k] vs MLX [out, k, k, in]; the family configs refuse in == k.
    return len(shape) == 4 and shape[2] == shape[3] and shape[1] != shape[2]


def sanitize(weights: dict[str, mx.array], tie_word_embeddings: bool | None = None) -> dict[str, mx.array]:
    """Any of the three LLaVA checkpoint layouts -> our names; idempotent.

    Layouts: hub 4.x (`vision_tower.vision_model.*`, `language_model.model.*`), transformers-5 saves
    (`vision_tower.*` without the `vision_model` level) and `model.*`-prefixed in-memory names. With tied
    embeddings a stray `lm_head` is dropped (mlx-lm reuses `embed_tokens`).
    """
    out: dict[str, mx.array] = {}
    for key, value in weights.items():
        if key.endswith("position_ids") or key.endswith("rotary_emb.inv_freq"):  # buffers, not parameters
            continue
        for old, new in _PREFIXES:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        if key.startswith("vision_tower.") and not key.startswith("vision_tower.vision_model."):
            key = "vision_tower.vision_model." + key[len("vision_tower.") :]
        if key.endswith("patch_embedding.weight") and _is_torch_conv(tuple(value.shape)):
            value = value.transpose(0, 2, 3, 1)  # conv [out, in, kh, kw] -> MLX [out, kh, kw, in]
        if tie_word_embeddings and key.startswith("language_model.lm_head."):
            continue
        out[key] = value
    return out
