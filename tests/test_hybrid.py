"""Hybrid search: RRF of dense and caption ranks lifts an image the embedding alone ranks low."""

from __future__ import annotations

import numpy as np
import pytest

from app.core import text_index
from app.core.backends import l2_normalize
from app.core.contracts import Filters, Hit
from app.core.errors import UsageError
from app.core.hybrid import RRF_K, hybrid_search, rrf
from app.core.query import parse_query
from app.core.search import SearchEngine
from app.core.store import Store
from tests.builders.fake_embedder import FakeEmbedder

QUERY = "red bicycle"
N = 40


def caption(store: Store, image_id: int, text: str) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO captions (image_id, model_id, text, created_at) VALUES (?, 'cap', ?, 1.0)",
            (image_id, text),
        )
        text_index.refresh(store)  # what the captioner (a writer) does; searches never write


@pytest.fixture
def lib():
    """N images with random vectors; the target's vector points away from the query's text vector."""
    emb = FakeEmbedder(dim=32)
    store = Store(":memory:")
    q = emb.embed_texts([QUERY])[0]
    rng = np.random.default_rng(1)
    vecs = l2_normalize(rng.standard_normal((N, emb.dim)).astype(np.float32))
    target = 7
    vecs[target] = l2_normalize((-q + 0.3 * rng.standard_normal(emb.dim)).astype(np.float32)[None])[0]
    with store.transaction() as conn:
        r1 = store.add_root("/lib/a", 0.0)
        r2 = store.add_root("/lib/b", 0.0)
        for i in range(1, N + 1):
            folder = "/lib/a" if i % 2 else "/lib/b"
            conn.execute(
                "INSERT INTO images (id, root_id, path, status) VALUES (?, ?, ?, 'ok')",
                (i, r1 if i % 2 else r2, f"{folder}/img_{i:03d}.jpg"),
            )
        store.put_embeddings(emb.model_id, list(range(1, N + 1)), vecs)
    engine = SearchEngine(store, emb)
    yield store, engine, target + 1  # image ids start at 1
    store.close()


def rank_of(result, image_id: int) -> int | None:
    ids = [h.image_id for h in result.hits]
    return ids.index(image_id) + 1 if image_id in ids else None


def test_rrf_adds_reciprocal_ranks():
    fused = rrf([[3, 1, 2], [2, 3]])
    assert fused[3] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert fused[2] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert fused[1] == pytest.approx(1 / (RRF_K + 2))


def test_without_captions_the_dense_result_is_returned_unchanged(lib):
    store, engine, _ = lib
    dense = engine.search([QUERY], 5)
    hybrid = hybrid_search(engine, store, [QUERY], 5)
    assert hybrid == dense and all(type(h) is Hit and h.fused is None for h in hybrid.hits)


def test_caption_match_lifts_an_image_the_embedding_ranks_low(lib):
    store, engine, target = lib
    k = 5
    caption(store, target, "A red bicycle leaning on a brick wall")
    for i, text in (
        (1, "a cat on a sofa"),
        (2, "snowy mountains under a blue sky"),
        (3, "a red car in the street"),
    ):
        caption(store, i, text)
    dense_rank = rank_of(engine.search([QUERY], N), target)
    assert dense_rank is not None and dense_rank > 3 * k  # the embedding alone buries it

    result = hybrid_search(engine, store, [QUERY], k)
    assert len(result.hits) == k and rank_of(result, target) is not None and rank_of(result, target) <= 2
    hit = next(h for h in result.hits if h.image_id == target)
    assert isinstance(hit, Hit)
    assert hit.caption == "A red bicycle leaning on a brick wall"
    assert hit.text_rank == 1 and hit.dense_rank == dense_rank and not hit.weak
    assert hit.fused == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + dense_rank))
    # The cosine stays the score, as in dense search.
    q = engine.query_vector(parse_query([QUERY]))
    v = store.f16_vectors(engine.model_id, [target])[0].astype(np.float32)
    assert hit.score == pytest.approx(float(v @ q), abs=1e-5)
    assert [h.fused for h in result.hits] == sorted((h.fused for h in result.hits), reverse=True)
    assert hit.to_json()["caption"].startswith("A red bicycle")


def test_text_only_candidates_outside_the_dense_pool_are_scored_and_kept(lib):
    store, engine, target = lib
    caption(store, target, "a red bicycle")
    result = hybrid_search(engine, store, [QUERY], 3, pool=5)  # the target is far outside a pool of 5
    hit = next(h for h in result.hits if h.image_id == target)
    assert hit.dense_rank is None and hit.text_rank == 1
    v = store.f16_vectors(engine.model_id, [target])[0].astype(np.float32)
    assert hit.score < 0 and hit.score == pytest.approx(
        float(v @ engine.embedder.embed_texts([QUERY])[0]), abs=1e-3
    )


def test_dense_only_keeps_the_dense_order_but_shows_captions(lib):
    store, engine, target = lib
    caption(store, target, "a red bicycle")
    dense = engine.search([QUERY], N)
    result = hybrid_search(engine, store, [QUERY], N, dense_only=True)
    assert [h.image_id for h in result.hits] == [h.image_id for h in dense.hits]
    assert [h.score for h in result.hits] == [h.score for h in dense.hits]
    assert {h.image_id: h.caption for h in result.hits if h.caption} == {target: "a red bicycle"}
    assert all(h.fused is None for h in result.hits)


def test_filters_apply_to_the_text_side_too(lib):
    store, engine, target = lib
    caption(store, target, "a red bicycle")  # the target (id 8) lives under /lib/b
    other = 9
    caption(store, other, "a red bicycle too")
    result = hybrid_search(engine, store, [QUERY], 5, filters=Filters(folder="/lib/a"))
    assert rank_of(result, target) is None and rank_of(result, other) == 1
    assert all(str(h.path).startswith("/lib/a/") for h in result.hits)


def test_negative_terms_drop_text_matches(lib):
    store, engine, target = lib
    caption(store, target, "a red bicycle by the sea")
    hit = next(h for h in hybrid_search(engine, store, [QUERY], N).hits if h.image_id == target)
    assert hit.text_rank == 1
    hit = next(h for h in hybrid_search(engine, store, [QUERY, "-sea"], N).hits if h.image_id == target)
    assert hit.text_rank is None


def test_bad_arguments_are_usage_errors(lib):
    store, engine, _ = lib
    with pytest.raises(UsageError):
        hybrid_search(engine, store, [QUERY], 0)
    with pytest.raises(UsageError, match="yesterday"):  # filters are typed (Filters); a bad date is refused
        hybrid_search(engine, store, [QUERY], 5, filters=Filters(date_from="yesterday"))
