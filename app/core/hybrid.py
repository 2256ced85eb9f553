"""Hybrid search: reciprocal rank fusion of the dense (embedding) ranking with the FTS5 text ranking.

RRF (Cormack et al., 2009) scores an image sum_r 1 / (RRF_K + rank_r) over the rankings it appears
in. It needs no score calibration between cosines and bm25, and an image ranked first by its caption
beats one ranked first by the embedding alone only when the other list agrees a little: both lists
count equally. Fusion runs only when the library has captions; without them the dense result is
returned unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from app.core import text_index
from app.core.contracts import NO_FILTERS, Filters, Hit
from app.core.errors import UsageError
from app.core.query import parse_query
from app.core.search import SearchEngine, SearchResult
from app.core.vocabulary import unknown_reason

RRF_K = 60  # the constant of the original paper; damps the head of each list so neither dominates


def rrf(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion of id lists (each best first) -> fused score per id."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for r, i in enumerate(ranking, start=1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (k + r)
    return fused


def _with_captions(store, result: SearchResult) -> SearchResult:
    caps = text_index.captions_for(store, [h.image_id for h in result.hits])
    hits = [
        Hit(h.image_id, h.path, h.score, h.weak, caps.get(h.image_id), dense_rank=n)
        for n, h in enumerate(result.hits, start=1)
    ]
    return replace(result, hits=hits)


def hybrid_search(
    engine: SearchEngine,
    store,
    terms: str | list[str],
    k: int = 20,
    dense_only: bool = False,
    *,
    pool: int | None = None,
    filters: Filters = NO_FILTERS,
) -> SearchResult:
    """The k best images for rclip-style `terms`, fusing dense and caption/tag/file-name ranks by RRF.

    `store` is the store the text index is read from (kept current by the writers; the engine may read through a
    connection of its own). Hits carry their caption when the library has captions;
    with `dense_only`, or an image-only query, they keep the dense order. A hit is weak when its cosine
    is below the engine's threshold and no text matched it. `pool`: candidates taken from each ranking.
    """
    if k <= 0:
        raise UsageError(f"k must be positive, got {k}")
    if not text_index.has_captions(store):
        return engine.search(terms, k, filters)
    parsed = parse_query(terms)
    positive = [t.value for t in parsed if t.kind == "text" and t.weight > 0]
    negative = [t.value for t in parsed if t.kind == "text" and t.weight < 0]
    if dense_only or text_index.match_expression(positive) is None:
        return _with_captions(store, engine.search(terms, k, filters))

    pool = pool or max(50, 3 * k)
    vec = engine.query_vector(parsed)
    kind = "image" if all(t.kind == "image" for t in parsed if t.weight > 0) else "text"
    unknown = engine.unknown_words(parsed)
    dense = engine.search_vector(vec, pool, kind, filters=filters)
    text = text_index.search(store, positive, negative, limit=pool, allowed=store.ids_matching(filters))
    dense_ids = [h.image_id for h in dense.hits]
    fused = rrf([dense_ids, [m.image_id for m in text]])
    dense_by_id = {h.image_id: (n, h) for n, h in enumerate(dense.hits, start=1)}
    text_rank = {m.image_id: m.rank for m in text}
    order = sorted(fused, key=lambda i: (-fused[i], dense_by_id.get(i, (pool + 1,))[0], i))

    # Text-only candidates have no cosine yet: score them exactly from their float16 vectors.
    outside = [i for i in order[: 2 * k] if i not in dense_by_id]
    cos: dict[int, float] = {}
    paths: dict[int, Path] = {}
    if outside:
        f16 = store.f16_vectors(engine.model_id, outside)  # (m, d)
        if f16.shape[1]:
            cos = dict(zip(outside, (f16.astype(np.float32) @ vec).tolist(), strict=True))
        paths = {r.id: Path(r.path) for r in store.image_info(outside) if r.status == "ok"}
    caps = text_index.captions_for(store, order[: 2 * k])
    hits: list[Hit] = []
    for i in order:
        if i in dense_by_id:
            n, h = dense_by_id[i]
            path, score, dense_weak = h.path, h.score, h.weak
        elif i in paths:
            n, path, score = None, paths[i], cos.get(i, 0.0)
            dense_weak = score < dense.threshold
        else:
            continue  # gone since the text index saw it
        # A caption or tag match is evidence of its own, even for words the model does not know.
        weak = (bool(unknown) or dense_weak) and i not in text_rank
        hits.append(
            Hit(i, path, score, weak, caps.get(i), fused=fused[i], dense_rank=n, text_rank=text_rank.get(i))
        )
        if len(hits) == k:
            break
    no_strong = not hits or hits[0].weak
    reason = (unknown_reason(unknown) or dense.reason or "nothing matched") if no_strong else None
    return SearchResult(hits, no_strong, dense.threshold, reason, unknown)
