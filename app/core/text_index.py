"""The text side of search: an FTS5 index over captions, applied tag labels and file names.

One `text_fts` row per image (rowid = image id) with three columns: every caption of the image, its
auto or confirmed tag labels, and the file name without extension. Triggers on captions, tags and
images only mark rows dirty (schema v3); `refresh()` rebuilds the dirty rows, so bulk tag writes stay
cheap; the writers (indexer, tagger, captioner, decisions) refresh in their own transactions, so a
search only reads. Ranking is FTS5's bm25.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from app.core.store import Store, text_to_path

# bm25 column weights: a caption describes the picture, a tag is one word, a file name is often noise.
COLUMN_WEIGHTS = (1.0, 1.0, 0.5)

# Words that match nearly every caption ("a photo of the ..."); left in, they would give every captioned
# image a text rank and so a fusion bonus.
STOPWORDS = frozenset(
    "a an the of in on at to and or with for from by is are was were be this that these those it its "
    "photo photos picture pictures image images".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class TextMatch:
    image_id: int
    rank: int  # 1-based, best first
    bm25: float  # FTS5 bm25 (more negative is better)


def query_words(text: str) -> list[str]:
    """The searchable words of free text, lower-cased, stopwords dropped, order kept, no repeats."""
    words = [w.lower() for w in _WORD.findall(text)]
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS))


def match_expression(positive: Sequence[str], negative: Sequence[str] = ()) -> str | None:
    """An FTS5 MATCH string from user text: each word a quoted string, so no FTS syntax can get through.

    Positive words are OR-ed (bm25 rewards rows matching more of them); negative words are excluded
    with NOT. None when no positive word is left.
    """
    pos = [w for t in positive for w in query_words(t)]
    if not pos:
        return None
    quote = lambda w: '"' + w.replace('"', '""') + '"'  # noqa: E731 - \w+ has no quotes, but stay safe
    expr = " OR ".join(quote(w) for w in dict.fromkeys(pos))
    neg = [w for t in negative for w in query_words(t) if w not in pos]
    if neg:
        expr = f"({expr}) NOT ({' OR '.join(quote(w) for w in dict.fromkeys(neg))})"
    return expr


def _name(path_text: str) -> str:
    """The file name without extension, as words: undecodable bytes (non-UTF-8 names) become U+FFFD."""
    stem = text_to_path(path_text).stem
    return stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def refresh(store: Store, chunk: int = 2000) -> int:
    """Rebuild the rows of images marked dirty; returns how many. Joins an open transaction if any."""
    if store.read_only:  # browsing a library that cannot be written: its text index is used as it is
        return 0
    if not store.dirty_text_ids(1):
        return 0
    n = 0
    with store.transaction():
        while ids := store.dirty_text_ids(chunk):
            store.rewrite_text_rows(ids, _name)
            n += len(ids)
    return n


def rebuild(store: Store) -> int:
    """Mark every image dirty and refresh: repairs an index that was changed behind the triggers' back."""
    with store.transaction():
        store.mark_all_text_dirty()
    return refresh(store)


def search(
    store: Store,
    positive: Sequence[str],
    negative: Sequence[str] = (),
    limit: int = 100,
    allowed: np.ndarray | None = None,
) -> list[TextMatch]:
    """The best `limit` 'ok' images for the words of `positive` texts, by bm25; `allowed` restricts ids.

    Exact once the writers have refreshed (the indexer, tagger, captioner and tag decisions do, in their
    own transactions); a search never writes.
    """
    expr = match_expression(positive, negative)
    if expr is None or limit <= 0:
        return []
    keep = None if allowed is None else set(np.asarray(allowed, np.int64).tolist())
    out: list[TextMatch] = []
    cur = store.text_matches(expr, COLUMN_WEIGHTS, None if keep is not None else limit)
    for image_id, score in cur:
        if keep is not None and image_id not in keep:
            continue
        out.append(TextMatch(int(image_id), len(out) + 1, float(score)))
        if len(out) == limit:
            break
    cur.close()
    return out


def has_captions(store: Store) -> bool:
    return store.has_captions()


def captions_for(store: Store, image_ids: Iterable[int]) -> dict[int, str]:
    """The newest non-empty caption of each image that has one (any caption model)."""
    return store.newest_captions(list(image_ids))
