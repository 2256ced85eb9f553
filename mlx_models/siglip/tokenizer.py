"""SigLIP tokenization with `sentencepiece`, reproducing transformers' slow `SiglipTokenizer` (5.x).

Pipeline, per text: split out literal special tokens (`</s>`, `<unk>`) -> prefix "▁" -> canonicalise each
plain chunk as big_vision does (lowercase, drop ASCII punctuation, collapse whitespace, strip) -> encode
"<unk>" + chunk and drop the pieces of "<unk>" (sentencepiece would otherwise eat the leading "▁") ->
truncate to max_length - 1 -> append EOS -> pad with the pad token up to max_length.

Padding convention matched: `padding="max_length"` (max_length = text_config.max_position_embeddings, 64
for released SigLIP) with truncation, and the model run WITHOUT an attention mask, as the SigLIP
processor/pipeline does and the model was trained. The returned `attention_mask` is therefore all ones:
passing it on is the same as passing none, and the text embedding is taken at the last (pad) position.
"""

from __future__ import annotations

import re
import shutil
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..common.bundle import TokenBatch
from ..common.config import read_json
from ..common.errors import ConfigError

TOKENIZER_FILES = ("spiece.model", "tokenizer_config.json", "special_tokens_map.json")
SPIECE_UNDERLINE = "\u2581"
_PUNCT = str.maketrans("", "", string.punctuation)


def _token_str(value: object, default: str) -> str:
    """A special token as written in tokenizer_config.json: a string or an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else default


class Tokenizer:
    """Batch tokenizer for SigLIP; ids equal `SiglipTokenizer(texts, padding="max_length", truncation=True)`."""

    def __init__(
        self,
        spiece_path: Path,
        *,
        max_length: int = 64,
        eos_token: str = "</s>",
        pad_token: str = "</s>",
        unk_token: str = "<unk>",
        do_lower_case: bool = True,
    ) -> None:
        import sentencepiece as spm  # a declared runtime dependency; imported here to keep import light

        if max_length < 2:
            raise ConfigError(f"tokenizer max_length={max_length} must be at least 2")
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(spiece_path))
        except (OSError, RuntimeError) as e:
            raise ConfigError(f"{spiece_path}: not a readable sentencepiece model ({e})") from e
        self.max_length = max_length
        self.do_lower_case = do_lower_case
        self.unk_token = unk_token
        self.specials = {tok: self.sp.piece_to_id(tok) for tok in (eos_token, pad_token, unk_token)}
        self.eos_id = self.specials[eos_token]
        self.pad_id = self.specials[pad_token]
        self._unk_len = len(self.sp.encode(unk_token))
        self._split = re.compile(
            "(" + "|".join(re.escape(t) for t in sorted(self.specials, key=len, reverse=True)) + ")"
        )

    @classmethod
    def from_folder(cls, path: str | Path) -> Tokenizer:
        """Read spiece.model, tokenizer_config.json / special_tokens_map.json and the text max length."""
        path = Path(path)
        spiece = path / "spiece.model"
        if not spiece.exists():
            raise ConfigError(f"{path}: spiece.model not found (SigLIP's tokenizer)")
        tc = read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").exists() else {}
        sm = (
            read_json(path / "special_tokens_map.json") if (path / "special_tokens_map.json").exists() else {}
        )
        tok = {**sm, **tc}
        max_length = tok.get("model_max_length", 64)
        if (path / "config.json").exists():
            text_cfg = read_json(path / "config.json").get("text_config") or {}
            max_length = text_cfg.get("max_position_embeddings", max_length)
        return cls(
            spiece,
            max_length=int(max_length),
            eos_token=_token_str(tok.get("eos_token"), "</s>"),
            pad_token=_token_str(tok.get("pad_token"), "</s>"),
            unk_token=_token_str(tok.get("unk_token"), "<unk>"),
            do_lower_case=bool(tok.get("do_lower_case", True)),
        )

    def canonicalize(self, text: str) -> str:
        """big_vision's prompt canonicalisation, as SiglipTokenizer.canonicalize_text does it."""
        if self.do_lower_case:
            text = text.lower()
        text = text.translate(_PUNCT)
        return re.sub(r"\s+", " ", text).strip()

    def _chunk_pieces(self, text: str) -> list[str]:
        pieces = self.sp.encode(self.unk_token + self.canonicalize(text), out_type=str)
        return pieces[self._unk_len :] if len(pieces) >= self._unk_len else pieces

    def encode(self, text: str) -> list[int]:
        """Ids of one text, without EOS or padding."""
        parts = self._split.split(SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " "))
        # Special tokens strip the whitespace on both sides (AddedToken lstrip/rstrip).
        for i, part in enumerate(parts):
            if part in self.specials:
                if i > 0:
                    parts[i - 1] = parts[i - 1].rstrip()
                if i + 1 < len(parts):
                    parts[i + 1] = parts[i + 1].lstrip()
        pieces: list[str] = []
        for part in parts:
            if part in self.specials:
                pieces.append(part)
            elif part:
                pieces.extend(self._chunk_pieces(part))
        # A lone leading "▁" right before a special token is dropped, as SiglipTokenizer.tokenize does.
        if len(pieces) > 1 and pieces[0] == SPIECE_UNDERLINE and pieces[1] in self.specials:
            pieces = pieces[1:]
        return [self.specials[p] if p in self.specials else self.sp.piece_to_id(p) for p in pieces]

    def maps_to_unknown(self, word: str) -> bool:
        """True when `word` encodes to `<unk>` (a character the sentencepiece model never saw)."""
        return self.specials[self.unk_token] in self.encode(word)

    def __call__(self, texts: Sequence[str]) -> TokenBatch:
        """(N, max_length) int32 ids padded with the pad token, and an all-ones mask (see module docstring)."""
        ids = np.full((len(texts), self.max_length), self.pad_id, dtype=np.int32)
        for row, text in enumerate(texts):
            seq = self.encode(text)[: self.max_length - 1]
            if not seq or seq[-1] != self.eos_id:  # SiglipTokenizer does not add a second EOS
                seq = seq + [self.eos_id]
            ids[row, : len(seq)] = seq
        return TokenBatch(input_ids=ids, attention_mask=np.ones_like(ids))


def prepare_tokenizer(src: Path, dst: Path) -> None:
    """Copy the files `Tokenizer.from_folder` reads (spiece.model is required)."""
    src, dst = Path(src), Path(dst)
    if not (src / "spiece.model").exists():
        raise ConfigError(f"{src}: spiece.model not found (SigLIP's tokenizer)")
    dst.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copyfile(src / name, dst / name)
