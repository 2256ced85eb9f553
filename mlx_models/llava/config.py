"""LLaVA config: fields equal transformers' `LlavaConfig` keys; the two sub-configs stay HF dicts.

The vision sub-config is validated by the CLIP/SigLIP family whose tower we reuse; the text sub-config is
normalised here for mlx-lm (see `lm_args`), which is where transformers-5 checkpoints differ from what
mlx-lm reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..common.config import check_range, from_dict
from ..common.errors import ConfigError

# vision_config.model_type -> our family module holding the tower's building blocks
TOWERS = {"clip_vision_model": "clip", "siglip_vision_model": "siglip"}
# text_config.model_type -> mlx-lm architecture module (each accepts `input_embeddings`)
LANGUAGE_MODELS = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
PROJECTOR_ACTS = ("gelu", "gelu_pytorch_tanh", "quick_gelu", "silu", "relu")
STRATEGIES = ("default", "full")


def _tie(d: dict[str, Any]) -> bool:
    """transformers copies text_config.tie_word_embeddings up to the LLaVA config when that is False."""
    return bool(d.get("tie_word_embeddings") or (d.get("text_config") or {}).get("tie_word_embeddings"))


@dataclass
class ModelConfig:
    vision_config: dict[str, Any] = field(default_factory=dict)
    text_config: dict[str, Any] = field(default_factory=dict)
    image_token_index: int = 32000
    image_seq_length: int = 576
    projector_hidden_act: str = "gelu"
    vision_feature_select_strategy: str = "default"
    vision_feature_layer: int | list[int] = -2
    multimodal_projector_bias: bool = True
    tie_word_embeddings: bool = False
    model_type: str = "llava"

    def __post_init__(self) -> None:
        if self.model_type != "llava":
            raise ConfigError(f"config model_type={self.model_type!r}, expected 'llava'")
        for key in ("vision_config", "text_config"):
            if not isinstance(getattr(self, key), dict):
                raise ConfigError(f"config {key} must be a JSON object")
        self.vision_config.setdefault("model_type", "clip_vision_model")  # LlavaConfig's default tower
        self.text_config.setdefault("model_type", "llama")
        vt, lt = self.vision_config["model_type"], self.text_config["model_type"]
        if vt not in TOWERS:
            raise ConfigError(f"config vision_config.model_type={vt!r} is not one of {', '.join(TOWERS)}")
        if lt not in LANGUAGE_MODELS:
            raise ConfigError(
                f"config text_config.model_type={lt!r} is not one of {', '.join(LANGUAGE_MODELS)}"
            )
        if self.projector_hidden_act not in PROJECTOR_ACTS:
            raise ConfigError(
                f"config projector_hidden_act={self.projector_hidden_act!r} is not one of {', '.join(PROJECTOR_ACTS)}"
            )
        if self.vision_feature_select_strategy not in STRATEGIES:
            raise ConfigError(
                f"config vision_feature_select_strategy={self.vision_feature_select_strategy!r} "
                f"is not one of {', '.join(STRATEGIES)}"
            )
        n_layers = int(self.vision_config.get("num_hidden_layers", 12))
        for layer in self.feature_layers:
            # hidden_states has n_layers + 1 entries (the embeddings first), indexed like a Python list
            check_range("vision_feature_layer", layer, -(n_layers + 1), n_layers)
        check_range("image_token_index", self.image_token_index, 0, 10**7)

    @property
    def tower(self) -> str:
        return TOWERS[self.vision_config["model_type"]]

    @property
    def feature_layers(self) -> list[int]:
        fl = self.vision_feature_layer
        layers = fl if isinstance(fl, list) else [fl]
        if not layers or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
            raise ConfigError(f"config vision_feature_layer={fl!r} must be an integer or a list of integers")
        return layers

    def lm_args(self) -> dict[str, Any]:
        """text_config as mlx-lm's ModelArgs reads it.

        transformers 5 writes rope_theta (and any scaling) only inside `rope_parameters`; mlx-lm ignores that
        key and silently uses its own default theta (1e6 for qwen2), so carry the real values over.
        """
        args = dict(self.text_config)
        rp = args.get("rope_parameters")
        if isinstance(rp, dict):
            if "rope_theta" in rp:
                args["rope_theta"] = rp["rope_theta"]
            if rp.get("rope_type", "default") != "default" and not args.get("rope_scaling"):
                args["rope_scaling"] = {
                    **{k: v for k, v in rp.items() if k != "rope_theta"},
                    "type": rp["rope_type"],
                }
        args["tie_word_embeddings"] = self.tie_word_embeddings
        for key in (
            "hidden_size",
            "num_hidden_layers",
            "intermediate_size",
            "num_attention_heads",
            "vocab_size",
        ):
            if key not in args:
                raise ConfigError(f"config text_config.{key} is missing")
        check_range("text_config.hidden_size", args["hidden_size"], 1, 16384)
        check_range("text_config.num_hidden_layers", args["num_hidden_layers"], 1, 256)
        check_range("text_config.vocab_size", args["vocab_size"], 1, 10**6)
        args.setdefault("rms_norm_eps", 1e-6)
        return args

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"config must be a JSON object, got {type(d).__name__}")
        d = dict(d)
        if "image_token_index" not in d and "image_token_id" in d:  # LlavaConfig's attribute_map alias
            d["image_token_index"] = d["image_token_id"]
        d["tie_word_embeddings"] = _tie(d)
        d["vision_config"] = dict(d.get("vision_config") or {})
        d["text_config"] = dict(d.get("text_config") or {})
        return from_dict(cls, d)
