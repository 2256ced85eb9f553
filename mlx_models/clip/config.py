"""CLIP configuration: dataclasses whose fields equal the keys of Hugging Face's CLIP config.json.

Defaults are transformers' (`CLIPTextConfig`, `CLIPVisionConfig`, `CLIPConfig`), i.e. openai/clip-vit-base-patch32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..common.config import check_divisible, check_int, from_dict
from ..common.errors import ConfigError

ACTIVATIONS = ("quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh")
# A ViT-bigG-sized CLIP has ~2.5e9 parameters; ten times that is a broken or hostile config, not a model.
MAX_PARAMETERS = 25_000_000_000


def _check_common(prefix: str, c: TextConfig | VisionConfig) -> None:
    check_int(f"{prefix}.hidden_size", c.hidden_size, 1, 16384)
    check_int(f"{prefix}.intermediate_size", c.intermediate_size, 1, 65536)
    check_int(f"{prefix}.num_hidden_layers", c.num_hidden_layers, 1, 256)
    check_int(f"{prefix}.num_attention_heads", c.num_attention_heads, 1, c.hidden_size)
    check_divisible(
        f"{prefix}.hidden_size", c.hidden_size, f"{prefix}.num_attention_heads", c.num_attention_heads
    )
    eps = c.layer_norm_eps
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1:
        raise ConfigError(f"config {prefix}.layer_norm_eps={eps!r} must be in the open interval (0, 1)")
    if c.hidden_act not in ACTIVATIONS:
        raise ConfigError(
            f"config {prefix}.hidden_act={c.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}"
        )


def _tower_parameters(c: TextConfig | VisionConfig) -> int:
    d, f = c.hidden_size, c.intermediate_size
    return c.num_hidden_layers * (4 * d * d + 2 * d * f)


@dataclass
class TextConfig:
    vocab_size: int = 49408
    hidden_size: int = 512
    intermediate_size: int = 2048
    projection_dim: int = 512
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    pad_token_id: int | None = 1
    bos_token_id: int | None = 49406
    # 2 in checkpoints converted before transformers PR #24773: pooling then takes the argmax token id.
    eos_token_id: int = 49407

    def __post_init__(self) -> None:
        _check_common("text_config", self)
        check_int("text_config.vocab_size", self.vocab_size, 1, 10**6)
        check_int("text_config.max_position_embeddings", self.max_position_embeddings, 1, 16384)
        check_int("text_config.eos_token_id", self.eos_token_id, 0, 10**6)


@dataclass
class VisionConfig:
    hidden_size: int = 768
    intermediate_size: int = 3072
    projection_dim: int = 512
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 32
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        _check_common("vision_config", self)
        check_int("vision_config.num_channels", self.num_channels, 1, 16)
        check_int("vision_config.image_size", self.image_size, 8, 4096)
        check_int("vision_config.patch_size", self.patch_size, 1, self.image_size)
        # No divisibility check: like transformers, the patch grid floors (so400m: 384 / 14 -> 27 x 27).
        if self.patch_size == self.num_channels:
            # sanitize tells PyTorch from MLX conv layout by shape, which needs in-channels != kernel size.
            raise ConfigError(
                f"config vision_config.patch_size={self.patch_size} must differ from num_channels"
            )

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass
class ModelConfig:
    text_config: TextConfig = field(default_factory=TextConfig)
    vision_config: VisionConfig = field(default_factory=VisionConfig)
    projection_dim: int = 512
    logit_scale_init_value: float = 2.6592
    model_type: str = "clip"

    def __post_init__(self) -> None:
        if self.model_type != "clip":
            raise ConfigError(f"config model_type={self.model_type!r}, expected 'clip'")
        check_int("projection_dim", self.projection_dim, 1, 16384)
        t, v = self.text_config, self.vision_config
        n = _tower_parameters(t) + _tower_parameters(v) + t.vocab_size * t.hidden_size
        n += (v.hidden_size + t.hidden_size) * self.projection_dim + v.num_patches * v.hidden_size
        if n > MAX_PARAMETERS:
            raise ConfigError(
                f"config implies ~{n:.2e} parameters, more than the allowed {MAX_PARAMETERS:.1e}"
            )

    @property
    def embed_dim(self) -> int:
        """Width of the shared embedding space (both projections' output)."""
        return int(self.projection_dim)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from a parsed config.json; unknown keys are ignored, missing ones take HF defaults."""
        if not isinstance(d, dict):
            raise ConfigError(f"config must be a JSON object, got {type(d).__name__}")
        towers = {}
        for key, sub in (("text_config", TextConfig), ("vision_config", VisionConfig)):
            nested, legacy = d.get(key) or {}, d.get(f"{key}_dict") or {}
            if not isinstance(nested, dict) or not isinstance(legacy, dict):
                raise ConfigError(f"config {key} must be an object")
            # Old checkpoints also carry `<tower>_dict`; transformers lets it override the nested config.
            towers[key] = from_dict(sub, {**nested, **legacy})
        top = {k: v for k, v in d.items() if k not in towers and not k.endswith("_config_dict")}
        return from_dict(cls, {**top, **towers})
