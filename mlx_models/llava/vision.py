"""LLaVA's vision tower, built from our CLIP / SigLIP blocks, returning per-layer hidden states.

LLaVA never uses the tower's pooled output: it reads `hidden_states[vision_feature_layer]`, taken before
`post_layernorm`. The norm (and SigLIP's head, when the checkpoint has one) are still held so the
checkpoint loads key for key, as transformers' `CLIPVisionModel` / `SiglipVisionModel` hold them.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn

from ..clip import model as clip_model
from ..clip.config import VisionConfig as ClipVisionConfig
from ..common.config import from_dict
from ..common.errors import ModelError
from ..siglip import model as siglip_model
from ..siglip.config import VisionConfig as SiglipVisionConfig


def vision_config(tower: str, d: dict[str, Any]) -> ClipVisionConfig | SiglipVisionConfig:
    """The family's validated VisionConfig for a LLaVA `vision_config` dict."""
    if tower == "clip":
        return from_dict(ClipVisionConfig, d)
    # SigLIP's embedder refuses towers without the pooling head; LLaVA towers often lack it and never use it.
    return from_dict(SiglipVisionConfig, {**d, "vision_use_head": True})


class VisionTransformer(nn.Module):
    """transformers' `vision_model` of a CLIP or SigLIP vision tower, with the checkpoint's names."""

    def __init__(self, tower: str, d: dict[str, Any]) -> None:
        super().__init__()
        cfg = vision_config(tower, d)
        self.tower = tower
        self.image_size = cfg.image_size
        self.num_channels = cfg.num_channels
        blocks = clip_model if tower == "clip" else siglip_model
        self.embeddings = blocks.VisionEmbeddings(cfg)
        if tower == "clip":
            self.pre_layrnorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)  # sic, the HF key
        self.encoder = blocks.Encoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)  # unused by LLaVA
        if tower == "siglip" and d.get("vision_use_head", True):
            self.head = siglip_model.MultiheadAttentionPoolingHead(cfg)  # unused by LLaVA

    @property
    def num_layers(self) -> int:
        return len(self.encoder.layers)

    def hidden_states(self, pixel_values: mx.array, upto: int) -> list[mx.array]:
        """[embeddings, after layer 1, ..., after layer `upto`], each (N, T, D), as transformers' hidden_states."""
        expected = (self.image_size, self.image_size, self.num_channels)
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ModelError(
                f"pixel_values must be (N, {', '.join(map(str, expected))}), got {tuple(pixel_values.shape)}"
            )
        x = self.embeddings(pixel_values)
        if self.tower == "clip":
            x = self.pre_layrnorm(x)  # CLIP's encoder input (hidden_states[0]) is already normed
        states = [x]
        for layer in self.encoder.layers[:upto]:
            x = layer(x)
            states.append(x)
        return states


class VisionTower(nn.Module):
    """The `vision_tower` module: a wrapper holding `vision_model`, like CLIPVisionModel / SiglipVisionModel."""

    def __init__(self, tower: str, d: dict[str, Any]) -> None:
        super().__init__()
        self.vision_model = VisionTransformer(tower, d)

    def __call__(self, pixel_values: mx.array, layers: list[int]) -> mx.array:
        """(N, H, W, C) pixels -> the chosen layers' hidden states concatenated on features: (N, T, D * len(layers))."""
        n = self.vision_model.num_layers + 1  # hidden_states entries
        wanted = [i % n for i in layers]
        states = self.vision_model.hidden_states(pixel_values, upto=max(wanted))
        return mx.concatenate([states[i] for i in wanted], axis=-1) if len(wanted) > 1 else states[wanted[0]]
