"""CLIP tokenization over the `tokenizers` library, giving the ids of transformers' `CLIPTokenizer`
called with `padding=True, truncation=True, max_length=max_position_embeddings`.

tokenizer.json carries CLIP's pipeline (NFC, whitespace collapse, lower-case, CLIP's split, byte-level
BPE with `</w>`, BOS/EOS); this module adds right padding to the longest text and truncation.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Regex, decoders, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import BPE

from ..common.bundle import TokenBatch
from ..common.config import read_json
from ..common.errors import ConfigError

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
)
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
DEFAULT_MAX_LENGTH = 77  # the context length of every released CLIP
_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def tokenizer_from_vocab(vocab_file: Path, merges_file: Path) -> HFTokenizer:
    """The pipeline transformers' CLIPTokenizer builds, for folders that only ship vocab.json + merges.txt."""
    vocab = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
    lines = Path(merges_file).read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
    tok = HFTokenizer(
        BPE(
            vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="</w>", unk_token=EOS
        )
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([BOS, EOS])
    tok.post_processor = processors.RobertaProcessing(
        (EOS, tok.token_to_id(EOS)), (BOS, tok.token_to_id(BOS)), trim_offsets=False, add_prefix_space=False
    )
    return tok


def _token_text(value: Any) -> str | None:
    """tokenizer_config.json stores a special token as a string or as an AddedToken object."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _read_optional(path: Path) -> dict[str, Any]:
    return read_json(path) if path.exists() else {}


class Tokenizer:
    """Texts -> TokenBatch; BOS/EOS added, truncated to `max_length`, right-padded with the pad token."""

    def __init__(
        self, tokenizer: HFTokenizer, pad_token: str = EOS, max_length: int = DEFAULT_MAX_LENGTH
    ) -> None:
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ConfigError(f"pad token {pad_token!r} is not in the tokenizer's vocabulary")
        self.pad_id, self.max_length = pad_id, max_length
        self._tok = tokenizer
        # Configured once here, never per call, so concurrent calls see one fixed setting.
        self._tok.enable_truncation(max_length=max_length)
        self._tok.enable_padding(direction="right", pad_id=pad_id, pad_token=pad_token)
        unk = getattr(tokenizer.model, "unk_token", None)  # WordPiece and BPE models have it; others may not
        self._unk_id = tokenizer.token_to_id(unk) if isinstance(unk, str) else None

    def maps_to_unknown(self, word: str) -> bool:
        """True when `word` encodes to the unknown token (a closed vocabulary).

        CLIP's byte-level BPE spells any word out in bytes, so it never does; WordPiece can.
        """
        if self._unk_id is None:
            return False
        return self._unk_id in self._tok.encode(word, add_special_tokens=False).ids

    @classmethod
    def from_folder(cls, path: str | Path) -> Tokenizer:
        """Read tokenizer.json (else vocab.json + merges.txt); the pad token from tokenizer_config.json;
        the maximum length from config.json's text max_position_embeddings."""
        path = Path(path)
        if (path / "tokenizer.json").exists():
            tok = HFTokenizer.from_file(str(path / "tokenizer.json"))
        elif (path / "vocab.json").exists() and (path / "merges.txt").exists():
            tok = tokenizer_from_vocab(path / "vocab.json", path / "merges.txt")
        else:
            raise ConfigError(f"{path}: no tokenizer.json (nor vocab.json + merges.txt)")
        tcfg = {
            **_read_optional(path / "special_tokens_map.json"),
            **_read_optional(path / "tokenizer_config.json"),
        }
        pad = _token_text(tcfg.get("pad_token")) or EOS
        text_cfg = _read_optional(path / "config.json").get("text_config") or {}
        max_len = text_cfg.get("max_position_embeddings")
        if not isinstance(max_len, int):
            model_max = tcfg.get("model_max_length")
            max_len = model_max if isinstance(model_max, int) and model_max <= 16384 else DEFAULT_MAX_LENGTH
        return cls(tok, pad_token=pad, max_length=max_len)

    def __call__(self, texts: Sequence[str]) -> TokenBatch:
        if isinstance(texts, str):
            raise TypeError("Tokenizer takes a sequence of texts, not one string")
        if not texts:
            empty = np.zeros((0, 0), np.int32)
            return TokenBatch(empty, empty.copy())
        enc = self._tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in enc], dtype=np.int32)  # (N, L), padded to the longest
        mask = np.array([e.attention_mask for e in enc], dtype=np.int32)
        return TokenBatch(input_ids=ids, attention_mask=mask)


def prepare_tokenizer(src: Path, dst: Path) -> None:
    """Converter hook: copy the tokenizer files of `src` into `dst`, writing tokenizer.json when missing."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    if not (dst / "tokenizer.json").exists():
        if not ((src / "vocab.json").exists() and (src / "merges.txt").exists()):
            raise ConfigError(f"{src}: no tokenizer.json (nor vocab.json + merges.txt) to build one from")
        tokenizer_from_vocab(src / "vocab.json", src / "merges.txt").save(str(dst / "tokenizer.json"))
