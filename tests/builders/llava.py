"""Tiny random-weight LLaVA checkpoints written with transformers' own classes (offline).

Two presets cover the pairs the issue names: "tiny-siglip-qwen2" (SigLIP tower, Qwen2 language model,
tied embeddings, "full" feature strategy, ChatML template with its own system turn) and "tiny-clip-llama"
(CLIP tower, Llama language model, untied lm_head, "default" strategy dropping CLS, a BOS-adding tokenizer).
Both carry rope_theta only inside `rope_parameters`, as transformers 5 writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .common import randomize_all_parameters

CORPUS = [
    "a photo of a cat sitting on a red sofa",
    "two dogs running on the beach at sunset",
    "describe the image in one short sentence",
    "a bowl of fruit: apples, pears and bananas on a wooden table",
    "the mountains are covered with snow and the sky is blue",
    "people walking in a busy street in the city at night",
] * 4

# ChatML with a default system turn: the runtime must render it, never hand-write the prompt.
QWEN_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# llava-1.5 style, starting with the BOS token and using the `generation` tag transformers knows.
LLAVA15_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' ' }}{% endfor %}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' ' }}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny-siglip-qwen2": {
        "tower": "siglip",
        "lm": "qwen2",
        "vision": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
            "vision_use_head": False,
        },
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5000.0},
            "tie_word_embeddings": True,
        },
        "llava": {
            "vision_feature_select_strategy": "full",
            "vision_feature_layer": -1,
            "projector_hidden_act": "gelu",
            "multimodal_projector_bias": True,
        },
    },
    "tiny-clip-llama": {
        "tower": "clip",
        "lm": "llama",
        "vision": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
            "projection_dim": 32,
        },
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-5,
            "rope_parameters": {"rope_type": "default", "rope_theta": 20000.0},
            "tie_word_embeddings": False,
        },
        "llava": {
            "vision_feature_select_strategy": "default",
            "vision_feature_layer": -2,
            "projector_hidden_act": "gelu",
            "multimodal_projector_bias": True,
        },
    },
}


def _tokenizer(lm: str, template: str):
    """A byte-level BPE trained on CORPUS, wrapped as a transformers fast tokenizer with the model's specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if lm == "qwen2":
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]
        names = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    else:
        specials = ["<unk>", "<s>", "</s>", "<image>"]
        names = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"}
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    if lm == "llama":  # Llama's tokenizer prepends BOS itself; the template's own BOS must then switch it off
        bos = tok.token_to_id("<s>")
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
        )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, chat_template=template, **names)
    fast.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return fast


def make_llava_checkpoint(
    dst: Path, *, preset: str = "tiny-siglip-qwen2", seed: int = 0, **overrides: Any
) -> Path:
    """Write a complete HF LLaVA folder (config, safetensors with every parameter random, tokenizer, processor).

    overrides: `vision`, `text`, `llava` dicts merged into the preset's sub-configs.
    """
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        Qwen2Config,
        SiglipImageProcessorPil,
        SiglipVisionConfig,
    )

    preset = {"tiny": "tiny-siglip-qwen2"}.get(preset, preset)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    p = PRESETS[preset]
    vis = {**p["vision"], **overrides.get("vision", {})}
    txt = {**p["text"], **overrides.get("text", {})}
    top = {**p["llava"], **overrides.get("llava", {})}
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)

    template = QWEN_TEMPLATE if p["lm"] == "qwen2" else LLAVA15_TEMPLATE
    tok = _tokenizer(p["lm"], template)
    image_token_id = tok.convert_tokens_to_ids("<image>")
    txt.setdefault("vocab_size", len(tok))
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        tid = getattr(tok, key)
        if tid is not None:
            txt.setdefault(key, tid)

    if p["tower"] == "siglip":
        vcfg = SiglipVisionConfig(**vis)
        size = {"height": vis["image_size"], "width": vis["image_size"]}
        improc = SiglipImageProcessorPil(size=size)
        extra = 0
    else:
        vcfg = CLIPVisionConfig(**vis)
        improc = CLIPImageProcessorPil(
            size={"shortest_edge": vis["image_size"]},
            crop_size={"height": vis["image_size"], "width": vis["image_size"]},
        )
        extra = 1  # CLS
    tcfg = (Qwen2Config if p["lm"] == "qwen2" else LlamaConfig)(**txt)
    n_img = (
        (vis["image_size"] // vis["patch_size"]) ** 2
        + extra
        - (top["vision_feature_select_strategy"] == "default")
    )
    cfg = LlavaConfig(
        vision_config=vcfg,
        text_config=tcfg,
        image_token_index=image_token_id,
        image_seq_length=n_img,
        tie_word_embeddings=txt["tie_word_embeddings"],
        **top,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg).eval()
    randomize_all_parameters(model, seed, std=0.08)
    model.generation_config.eos_token_id = tcfg.eos_token_id
    model.save_pretrained(str(dst))

    proc = LlavaProcessor(
        image_processor=improc,
        tokenizer=tok,
        patch_size=vis["patch_size"],
        vision_feature_select_strategy=top["vision_feature_select_strategy"],
        num_additional_image_tokens=extra,
        chat_template=template,
    )
    proc.save_pretrained(str(dst))
    return dst


def config_of(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "config.json").read_text())
