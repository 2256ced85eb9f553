"""Random-weight CLIP checkpoints in the Hugging Face layout, written offline with transformers' own classes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from converters.build_tokenizer import build_clip_bpe_tokenizer
from tests.builders.common import randomize_all_parameters

CORPUS = [
    "a photo of a cat sleeping on a sofa",
    "a dog running on the beach at sunset",
    "snowy mountains above a quiet lake",
    "a red car parked in a narrow street",
    "two children playing football in the park",
    "a bowl of fresh fruit on a wooden table",
    "city skyline at night with bright lights",
    "a bird sitting on a branch in the rain",
    "portrait of an old man with a grey beard",
    "a birthday cake with candles",
    "boats in the harbour, early morning fog",
    "a forest path covered in autumn leaves",
    "flowers in a garden: roses, tulips and daisies",
    "a train crossing a bridge over the river",
    "people walking in a busy market",
    "a plate of pasta with tomato sauce",
    "the cat's toy and the dog's bone",
    "it's a sunny day; we're at the lake",
    "photo 1 2 3 4 5 6 7 8 9 0",
    "café crème brûlée naïve façade",
]

_TOWER = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "hidden_act",
    "layer_norm_eps",
)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "text_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
        },
        "vision_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        "projection_dim": 16,
    },
    # openai/clip-vit-base-patch32, including its legacy text eos_token_id of 2 (argmax pooling).
    "vit-b32": {
        "text_config": {
            "vocab_size": 49408,
            "hidden_size": 512,
            "intermediate_size": 2048,
            "num_hidden_layers": 12,
            "num_attention_heads": 8,
            "max_position_embeddings": 77,
            "hidden_act": "quick_gelu",
            "eos_token_id": 2,
        },
        "vision_config": {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 32,
            "hidden_act": "quick_gelu",
        },
        "projection_dim": 512,
    },
}


def _apply_overrides(cfg: dict[str, Any], overrides: dict[str, Any]) -> None:
    """`text_<key>` / `vision_<key>` set one tower; a bare tower key (e.g. hidden_act) sets both;
    image_size and patch_size go to the vision tower, anything else to the top level."""
    for key, value in overrides.items():
        if key.startswith("text_"):
            cfg["text_config"][key[5:]] = value
        elif key.startswith("vision_"):
            cfg["vision_config"][key[7:]] = value
        elif key in _TOWER:
            cfg["text_config"][key] = cfg["vision_config"][key] = value
        elif key in ("image_size", "patch_size", "num_channels"):
            cfg["vision_config"][key] = value
        elif key in ("projection_dim", "logit_scale_init_value"):
            cfg[key] = value
        else:
            raise TypeError(f"unknown CLIP checkpoint override {key!r}")


def make_clip_checkpoint(dst: Path, *, preset: str = "tiny", seed: int = 0, **overrides: Any) -> Path:
    """Write a complete HF CLIP folder into `dst`: config, randomised weights, tokenizer, preprocessor.

    The tokenizer is trained on a small caption corpus (EOS has the highest id, as in OpenAI's vocab);
    text vocab_size defaults to the tokenizer's size for "tiny" (overridable with text_vocab_size).
    """
    import torch
    from transformers import CLIPConfig, CLIPModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    build_clip_bpe_tokenizer(CORPUS, dst, vocab_size=1000)
    vocab = json.loads((dst / "vocab.json").read_text(encoding="utf-8"))

    cfg = copy.deepcopy(PRESETS[preset])
    text = cfg["text_config"]
    text.setdefault("vocab_size", len(vocab))
    text.setdefault("eos_token_id", vocab["<|endoftext|>"])
    text.update(bos_token_id=vocab["<|startoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    _apply_overrides(cfg, overrides)

    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(**cfg)).eval()
    randomize_all_parameters(model, seed)
    model.save_pretrained(str(dst))

    size = cfg["vision_config"]["image_size"]
    proc = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    proc.save_pretrained(str(dst))
    return dst
