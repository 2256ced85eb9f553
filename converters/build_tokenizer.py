"""Train a small CLIP-style tokenizer offline (tests and the bundled demo model use it).

The layout copies OpenAI CLIP's vocabulary: the 256 byte symbols, the same 256 with the `</w>`
end-of-word suffix, then one token per merge in merge order, and `<|startoftext|>`, `<|endoftext|>`
last (so EOS has the highest id, as the legacy `eos_token_id == 2` pooling in transformers assumes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
SUFFIX = "</w>"
# CLIPTokenizer's own pre-tokenizer split: special tokens, contractions, letter runs, single digits, punctuation.
_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def byte_symbols() -> list[str]:
    """The printable stand-in of each byte 0..255, in byte order (GPT-2 / CLIP byte-level scheme)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    out, extra = [], 0
    for b in range(256):
        if b in printable:
            out.append(chr(b))
        else:  # unprintable bytes map past 255, in order
            out.append(chr(256 + extra))
            extra += 1
    return out


def _train_merges(corpus: Iterable[str], n_merges: int) -> list[tuple[str, str]]:
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix=SUFFIX))
    # Same normalisation and split as CLIPTokenizer, so the merges fit what it will see.
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=n_merges + 2 * 256 + 256,  # room for the alphabet plus the merges we keep
        show_progress=False,
        end_of_word_suffix=SUFFIX,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(corpus, trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    pairs = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in merges]
    return [(a, b) for a, b in pairs][:n_merges]


def build_clip_bpe_tokenizer(
    corpus: Iterable[str], dst: Path, vocab_size: int = 1000, model_max_length: int = 77
) -> None:
    """Train a byte-level BPE with `</w>` suffixes on `corpus` and write a CLIP tokenizer into `dst`.

    Writes vocab.json and merges.txt, then the Hugging Face files (tokenizer.json,
    tokenizer_config.json, ...) through transformers' `CLIPTokenizer.save_pretrained`.
    `vocab_size` is an upper bound: a small corpus may yield fewer merges. `model_max_length` is
    recorded in tokenizer_config.json (77, the context length of every released CLIP).
    """
    base = byte_symbols()
    n_merges = vocab_size - 2 * len(base) - 2
    if n_merges < 1:
        raise ValueError(f"vocab_size={vocab_size} must exceed {2 * len(base) + 2} (byte symbols + specials)")
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)

    vocab: dict[str, int] = {}
    for sym in base + [s + SUFFIX for s in base]:
        vocab[sym] = len(vocab)
    merges = _train_merges(corpus, n_merges)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)

    vocab_file, merges_file = dst / "vocab.json", dst / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")

    from transformers import CLIPTokenizer

    tok = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file), model_max_length=model_max_length)
    tok.save_pretrained(str(dst))
