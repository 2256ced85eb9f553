"""Offline random-weight SigLIP checkpoints written with transformers' own classes.

The sentencepiece model is trained here on a generated corpus with SigLIP's special ids
(pad=0 "<pad>", eos=1 "</s>", unk=2 "<unk>", no BOS: the T5/big_vision c4_en layout).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from tests.builders.common import randomize_all_parameters

_WORDS = (
    "a photo of the cat dog bird car tree house person sky beach mountain city street night sunset "
    "red green blue small large old young two three running sitting flying at in on with and near "
    "café naïve über straße 東京 日本 snow river boat flower garden kitchen window table chair book"
).split()


_SYLLABLES = "ka lo mi ne su ta ri po ve zu an el or ix um str pla gro sen dal".split()


def _corpus(n_lines: int = 1500, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    # Real words plus made-up ones, so the unigram trainer has enough distinct pieces to choose from.
    words = list(_WORDS) + ["".join(rng.choices(_SYLLABLES, k=rng.randint(2, 4))) for _ in range(300)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(n_lines)]


def make_spiece_model(dst: Path, vocab_size: int = 320) -> Path:
    """Train a small unigram sentencepiece model at dst/spiece.model."""
    import sentencepiece as spm

    dst.mkdir(parents=True, exist_ok=True)
    corpus = dst / "corpus.txt"
    corpus.write_text("\n".join(_corpus()), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(dst / "spiece"),
        model_type="unigram",
        vocab_size=vocab_size,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    corpus.unlink()
    (dst / "spiece.vocab").unlink()
    return dst / "spiece.model"


def _tower(o: dict[str, Any], hidden: int) -> dict[str, Any]:
    return {
        "hidden_size": hidden,
        "intermediate_size": o.get("intermediate_size", 2 * hidden),
        "num_hidden_layers": o.get("num_hidden_layers", 2),
        "num_attention_heads": o.get("num_attention_heads", 4),
        "hidden_act": o.get("hidden_act", "gelu_pytorch_tanh"),
        "layer_norm_eps": o.get("layer_norm_eps", 1e-6),
    }


def tiny_config(vocab_size: int, **o: Any) -> dict[str, Any]:
    """Overrides: hidden_size (vision width = shared space), text_hidden_size, intermediate_size,
    num_hidden_layers, num_attention_heads, hidden_act, layer_norm_eps, image_size, patch_size,
    max_position_embeddings."""
    hidden = o.get("hidden_size", 32)
    text = _tower(o, o.get("text_hidden_size", hidden))
    text.update(
        vocab_size=vocab_size,
        max_position_embeddings=o.get("max_position_embeddings", 64),
        projection_size=hidden,
        pad_token_id=1,
        eos_token_id=1,
        bos_token_id=None,  # SigLIP's tokenizer has no BOS
    )
    vision = _tower(o, hidden)
    vision.update(image_size=o.get("image_size", 32), patch_size=o.get("patch_size", 8), num_channels=3)
    return {"text_config": text, "vision_config": vision}


def make_siglip_checkpoint(dst: Path, *, preset: str = "tiny", seed: int = 0, **overrides: Any) -> Path:
    """Write a complete HF SigLIP folder with every parameter random. presets: "tiny", "base-p16-224"."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel, SiglipTokenizer

    dst = Path(dst)
    spiece = make_spiece_model(dst / "_spm")
    tok = SiglipTokenizer(vocab_file=str(spiece))
    tok.save_pretrained(str(dst))
    if preset == "tiny":
        cfg = SiglipConfig(**tiny_config(tok.vocab_size, **overrides))
    elif preset == "base-p16-224":
        cfg = SiglipConfig()  # transformers' defaults are google/siglip-base-patch16-224
    else:
        raise ValueError(f"unknown preset {preset!r} (tiny, base-p16-224)")
    torch.manual_seed(seed)
    model = SiglipModel(cfg).eval()
    randomize_all_parameters(model, seed)
    model.save_pretrained(str(dst))
    size = cfg.vision_config.image_size
    SiglipImageProcessorPil(size={"height": size, "width": size}).save_pretrained(str(dst))
    (dst / "_spm" / "spiece.model").unlink()
    (dst / "_spm").rmdir()
    return dst
