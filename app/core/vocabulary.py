"""What a model's text side cannot know: the words of a query outside a closed vocabulary.

Two sources, both read from the model folder:
- a vocabulary its maker declared closed (config.json "fovea"/"known_words"; training/ writes it for
  the demo model, whose byte-level BPE spells an unknown word out in letters it never trained on, so
  "a dog" embeds near every other almost-empty prompt);
- a tokenizer that maps a word to its unknown token (WordPiece, SentencePiece, BPE with an unk).
Real CLIP's byte-level BPE never maps a word to its unknown token, so for open-vocabulary models the
check finds nothing and costs one tokenizer call per word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.backends import Embedder

_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits: what a person would call the words


@dataclass(frozen=True)
class ModelVocabulary:
    """Which words a model knows; `OPEN_VOCABULARY` (nothing declared, no unknown token) knows all."""

    known_words: frozenset[str] | None = None  # declared closed vocabulary, lower-case
    maps_to_unknown: Callable[[str], bool] | None = None  # the tokenizer's unknown-token test

    def unknown_words(self, texts: Iterable[str]) -> tuple[str, ...]:
        """Words of `texts` the model does not know, lower-cased, in order of first use, each once."""
        out: dict[str, None] = {}
        for text in texts:
            for word in _WORD.findall(text):
                low = word.lower()
                if low in out:
                    continue
                if self.known_words is not None and low not in self.known_words:
                    out[low] = None
                elif self.maps_to_unknown is not None and self.maps_to_unknown(word):
                    out[low] = None
        return tuple(out)


OPEN_VOCABULARY = ModelVocabulary()


def unknown_reason(words: Iterable[str]) -> str | None:
    """The one-line reason shown with a flagged result, or None when every word is known."""
    words = list(words)
    return f"the model does not know: {', '.join(words)}" if words else None


def unknown_labels(vocabulary: ModelVocabulary, labels: Iterable[str]) -> dict[str, str]:
    """label -> reason, for each tag label holding a word the model does not know (its scores are guesses)."""
    out = {}
    for label in labels:
        reason = unknown_reason(vocabulary.unknown_words([label]))
        if reason:
            out[label] = reason
    return out


def vocabulary_for(embedder: Embedder) -> ModelVocabulary:
    """The check for an embedder's model; an in-memory embedder without a folder knows every word."""
    return model_vocabulary(embedder.folder) if embedder.folder is not None else OPEN_VOCABULARY


def declared_known_words(folder: Path) -> frozenset[str] | None:
    """config.json "fovea"/"known_words" of a model folder, or None when its maker declared none."""
    from app.core.backends.ids import model_note

    words = model_note(folder, "known_words")
    return frozenset(str(w).lower() for w in words) if isinstance(words, list) else None


@lru_cache(maxsize=8)
def model_vocabulary(folder: Path) -> ModelVocabulary:
    """The vocabulary check for a model folder (a tokenizer that cannot be read: nothing is reported)."""
    known = declared_known_words(folder)
    if known is not None:
        return ModelVocabulary(known_words=known)
    import mlx_models
    from mlx_models.common.errors import ModelError

    try:
        tok = mlx_models.load_tokenizer(folder)
    except (ModelError, OSError, ValueError):
        return OPEN_VOCABULARY
    return ModelVocabulary(maps_to_unknown=tok.maps_to_unknown)
