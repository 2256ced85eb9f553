"""rclip-style query terms: "text", "+text", "-text", "2:text", "0.5:text", "-1:text" and image paths.

Each term becomes a weighted unit vector; the query vector is normalise(sum w_i * normalise(v_i)).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from app.core.errors import UsageError
from app.core.image_formats import EXTENSIONS

if TYPE_CHECKING:
    from app.core.backends import Embedder

IMAGE_EXTENSIONS = EXTENSIONS  # every format the decoder reads, RAW and HEIC included

# A leading number followed by ':' is a weight ("2:cat", "-0.5:dog", ".5:sky").
_WEIGHTED = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*:(.*)$", re.DOTALL)


@dataclass(frozen=True)
class QueryTerm:
    kind: Literal["text", "image"]
    value: str  # the text, or the image path as given
    weight: float


def _looks_like_image_path(value: str) -> bool:
    """A term naming a file with an image extension and no spaces is meant as a path, not as words."""
    return Path(value).suffix.lower() in IMAGE_EXTENSIONS and not any(c.isspace() for c in value)


def _existing_file(value: str) -> Path | None:
    """The file a term names, or None (odd strings such as "~x" or NUL bytes are just not files)."""
    try:
        path = Path(value).expanduser()
        return path if path.is_file() else None
    except (OSError, ValueError, RuntimeError):
        return None


def parse_term(term: str) -> QueryTerm:
    """One term -> QueryTerm; raises UsageError for an empty term or a missing image file."""
    if not isinstance(term, str):
        raise UsageError(f"query terms must be strings, got {type(term).__name__}")
    m = _WEIGHTED.match(term)
    if m:
        weight, value = float(m.group(1)), m.group(2)
        if not math.isfinite(weight):
            raise UsageError(f"query term {term!r} has a weight that is not a finite number")
    elif term[:1] in "+-" and term[:1] != "":
        weight, value = (1.0 if term[0] == "+" else -1.0), term[1:]
    else:
        weight, value = 1.0, term
    value = value.strip()
    if not value:
        raise UsageError(f"query term {term!r} is empty")
    path = _existing_file(value)
    if path is not None:
        return QueryTerm("image", str(path), weight)
    if _looks_like_image_path(value):
        raise UsageError(f"image {value!r} in the query does not exist")
    return QueryTerm("text", value, weight)


def parse_query(terms: list[str] | str) -> list[QueryTerm]:
    """Parse every term; a plain string is one term. Raises UsageError when the query cannot mean anything.

    At least one term must carry a positive weight: "-cat" alone (or only zero weights) has no
    direction to search in.
    """
    if isinstance(terms, str):
        terms = [terms]
    if not terms or all(not str(t).strip() for t in terms):
        raise UsageError("the query is empty: give at least one text or image term")
    parsed = [parse_term(t) for t in terms]
    if not any(t.weight > 0 for t in parsed):
        raise UsageError("the query needs at least one term with a positive weight")
    return parsed


DATE_FORMS = "YYYY, YYYY-MM or YYYY-MM-DD (e.g. 2023, 2023-05, 2023-05-17)"
_DATE_FORMATS = {4: "%Y", 7: "%Y-%m", 10: "%Y-%m-%d"}


def check_date(value: str | None) -> str | None:
    """A date filter as given, if it is one of DATE_FORMS (they compare as ISO text); else UsageError."""
    if value is None:
        return None
    fmt = _DATE_FORMATS.get(len(value))
    try:
        if fmt is None or not re.fullmatch(r"[\d-]+", value):
            raise ValueError
        datetime.strptime(value, fmt)
    except ValueError:
        raise UsageError(f"date {value!r} is not a date: use {DATE_FORMS}") from None
    return value


def combine(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """normalise(sum w_i * normalise(v_i)) of (n, d) vectors; UsageError when the terms cancel out."""
    v = np.asarray(vectors, np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    total = (np.asarray(weights, np.float64)[:, None] * v).sum(axis=0)  # (d,)
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise UsageError("the query terms cancel each other out (their weighted sum is zero)")
    return (total / norm).astype(np.float32)


_STARTS_TERM = re.compile(r"^(?:[+-]|[+-]?(?:\d+(?:\.\d*)?|\.\d+):)")


def split_query_line(text: str) -> list[str]:
    """A search-field line -> rclip-style terms: `red circle -blue sky 2:"a star"` -> ["red circle",
    "-blue sky", "2:a star"]. Plain words join the term before them; a +, - or weight prefix, a quoted
    phrase or an existing file starts a new term."""
    try:
        lex = shlex.shlex(text, posix=True, punctuation_chars=False)
        lex.whitespace_split = True
        tokens = list(lex)
    except ValueError:  # an unbalanced quote while typing
        tokens = text.replace('"', " ").replace("'", " ").split()
    terms: list[str] = []
    joinable = False  # may the next plain word extend the last term?
    for tok in tokens:
        is_file = Path(tok).expanduser().is_file() if len(tok) < 4096 else False
        if terms and joinable and not _STARTS_TERM.match(tok) and not is_file:
            terms[-1] += " " + tok
            continue
        terms.append(tok)
        joinable = not is_file and " " not in tok  # a quoted phrase is a whole term
    return terms


def embed_file(embedder: Embedder, path: Path) -> np.ndarray:
    """A query image's normalised vector, embedded from the file; UsageError when it cannot be read."""
    from app.core.decode import DecodeError, open_image

    if not path.is_file():
        raise UsageError(f"image {str(path)!r} does not exist")
    try:
        decoded = open_image(path)
    except DecodeError as e:
        raise UsageError(f"cannot read query image: {e}") from e
    return embedder.embed_images([decoded.image])[0]


def embed_query(
    embedder: Embedder,
    terms: list[QueryTerm],
    image_vector: Callable[[Path], np.ndarray] | None = None,
) -> np.ndarray:
    """normalise(sum w_i * v_i) over parsed terms, texts embedded in one batch.

    `image_vector` gives an image term's vector (search passes one that prefers the stored vector);
    by default the file is embedded.
    """
    vecs = np.zeros((len(terms), embedder.dim), np.float32)
    texts = [i for i, t in enumerate(terms) if t.kind == "text"]
    if texts:
        vecs[texts] = embedder.embed_texts([terms[i].value for i in texts])
    for i, t in enumerate(terms):
        if t.kind == "image":
            path = Path(t.value)
            vecs[i] = image_vector(path) if image_vector else embed_file(embedder, path)
    return combine(vecs, np.array([t.weight for t in terms]))
