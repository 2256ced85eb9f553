"""SigLIP config dataclasses; field names and defaults equal transformers' `SiglipConfig` (google/siglip-base-patch16-224)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..common.config import check_divisible, check_int, from_dict
from ..common.errors import ConfigError

# Activations the port implements (common/activations.py); SigLIP ships gelu_pytorch_tanh.
SUPPORTED_ACTS = ("gelu_pytorch_tanh", "gelu", "quick_gelu")


def _check_tower(name: str, c: Any) -> None:
    check_int(f"{name}.hidden_size", c.hidden_size, 1, 16384)
    check_int(f"{name}.intermediate_size", c.intermediate_size, 1, 65536)
    check_int(f"{name}.num_hidden_layers", c.num_hidden_layers, 1, 256)
    check_int(f"{name}.num_attention_heads", c.num_attention_heads, 1, 1024)
    check_divisible(
        f"{name}.hidden_size", c.hidden_size, f"{name}.num_attention_heads", c.num_attention_heads
    )
    if isinstance(c.layer_norm_eps, bool) or not isinstance(c.layer_norm_eps, (int, float)):
        raise ConfigError(f"config {name}.layer_norm_eps={c.layer_norm_eps!r} must be a number in (0, 1)")
    if not 0 < c.layer_norm_eps < 1:
        raise ConfigError(
            f"config {name}.layer_norm_eps={c.layer_norm_eps!r} is outside the allowed range (0, 1)"
        )
    if c.hidden_act not in SUPPORTED_ACTS:
        raise ConfigError(
            f"config {name}.hidden_act={c.hidden_act!r} is not one of {', '.join(SUPPORTED_ACTS)}"
        )


def _square(name: str, value: Any) -> int:
    """HF allows [h, w] pairs; the port (and every SigLIP checkpoint) uses square images and patches."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ConfigError(f"config {name}={value!r}: only square sizes are supported")
        value = value[0]
    return value


@dataclass
class TextConfig:
    vocab_size: int = 32000
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 64
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6
    pad_token_id: int | None = 1
    eos_token_id: int | None = 49407
    projection_size: int | None = None  # HF: defaults to hidden_size

    def __post_init__(self) -> None:
        if self.projection_size is None:
            self.projection_size = self.hidden_size
        _check_tower("text_config", self)
        check_int("text_config.vocab_size", self.vocab_size, 1, 10**6)
        check_int("text_config.max_position_embeddings", self.max_position_embeddings, 1, 8192)
        check_int("text_config.projection_size", self.projection_size, 1, 16384)


@dataclass
class VisionConfig:
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 16
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6
    vision_use_head: bool = True

    def __post_init__(self) -> None:
        self.image_size = _square("vision_config.image_size", self.image_size)
        self.patch_size = _square("vision_config.patch_size", self.patch_size)
        _check_tower("vision_config", self)
        check_int("vision_config.num_channels", self.num_channels, 1, 4)
        check_int("vision_config.image_size", self.image_size, 8, 4096)
        check_int("vision_config.patch_size", self.patch_size, 1, self.image_size)
        # No divisibility check: like transformers, the patch grid floors (so400m: 384 / 14 -> 27 x 27).
        # sanitize() tells the conv layouts [out, C, p, p] and [out, p, p, C] apart by shape; p == C would be ambiguous.
        if self.patch_size == self.num_channels:
            raise ConfigError(
                f"config vision_config.patch_size={self.patch_size} must differ from num_channels"
            )
        # Without the attention-pooling head HF's pooler_output is None: no image embedding exists.
        if self.vision_use_head is not True:
            raise ConfigError(
                "config vision_config.vision_use_head=False: SigLIP image embeddings need the head"
            )


@dataclass
class ModelConfig:
    text_config: TextConfig = field(default_factory=TextConfig)
    vision_config: VisionConfig = field(default_factory=VisionConfig)
    model_type: str = "siglip"

    def __post_init__(self) -> None:
        if self.model_type != "siglip":
            raise ConfigError(f"config model_type={self.model_type!r}, expected 'siglip'")
        # Both towers land in one space: the text head's output width must equal the vision width.
        if self.text_config.projection_size != self.vision_config.hidden_size:
            raise ConfigError(
                f"config text_config.projection_size={self.text_config.projection_size} must equal "
                f"vision_config.hidden_size={self.vision_config.hidden_size} (the shared embedding width)"
            )

    @property
    def embed_dim(self) -> int:
        """Width of the shared embedding space (text head output = vision width)."""
        return int(self.text_config.projection_size)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        for key in ("text_config", "vision_config"):
            if d.get(key) is not None and not isinstance(d[key], dict):
                raise ConfigError(f"config {key} must be a JSON object, got {type(d[key]).__name__}")
        return cls(
            text_config=from_dict(TextConfig, d.get("text_config") or {}),
            vision_config=from_dict(VisionConfig, d.get("vision_config") or {}),
            model_type=d.get("model_type", "siglip"),
        )
