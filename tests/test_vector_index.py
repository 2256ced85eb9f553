"""VectorIndex against exact float32 numpy search on structured data with shifted (text-like) queries."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.vector_index import IndexConfig, VectorIndex
from app.core.vectors import quantize_int8


def structured(n: int, d: int = 64, nq: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows from a low-dimensional Gaussian mixture mapped up with noise; queries are mapped by a
    distorted map and pushed along a common offset, like text queries against image embeddings."""
    rng = np.random.default_rng(seed)
    latent, comps = 16, 40
    centers = rng.standard_normal((comps, latent))
    up = rng.standard_normal((latent, d)) / np.sqrt(latent)
    up_q = up + 0.6 * rng.standard_normal((latent, d)) / np.sqrt(latent)
    gap = rng.standard_normal(d)
    gap /= np.linalg.norm(gap)

    def draw(m: int, u: np.ndarray, shift: float) -> np.ndarray:
        z = centers[rng.integers(0, comps, m)] + 0.8 * rng.standard_normal((m, latent))
        x = z @ u + 0.6 * rng.standard_normal((m, d))
        x = x / np.linalg.norm(x, axis=1, keepdims=True) + shift * gap
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return draw(n, up, 0.0), draw(nq, up_q, 1.2)


def recall_at_10(index: VectorIndex, x: np.ndarray, queries: np.ndarray, pool: int, ids: np.ndarray) -> float:
    """Recall@10 of (candidate pool -> exact rescoring), as the search engine ranks."""
    hits = 0
    for q in queries:
        truth = set(ids[np.argsort(-(x @ q))[:10]].tolist())
        cand = index.search(q, pool)
        row = {int(i): r for r, i in enumerate(ids)}
        exact = x[[row[int(i)] for i in cand.ids]] @ q
        hits += len(truth & set(cand.ids[np.argsort(-exact)[:10]].tolist()))
    return hits / (10 * len(queries))


def build(
    x: np.ndarray, config: IndexConfig, ids: np.ndarray | None = None, batch: int | None = None
) -> VectorIndex:
    ids = np.arange(100, 100 + len(x)) if ids is None else ids
    q, s = quantize_int8(x)
    index = VectorIndex(x.shape[1], config)
    batch = batch or len(x)
    for a in range(0, len(x), batch):
        index.add(ids[a : a + batch], q[a : a + batch], s[a : a + batch])
    return index


SMALL = dict(exhaustive_below=1000, prefix_dims=16, first_pass=256, min_rescore_cap=1024)  # d = 64 scale


def test_exhaustive_int8_scores_match_float32_within_quantisation_error():
    x, queries = structured(2000)
    index = build(x, IndexConfig())
    assert not index.fitted  # below exhaustive_below: every row scored in full, no rotation yet
    cand = index.search(queries[0], 50)
    exact = x[cand.ids - 100] @ queries[0]
    np.testing.assert_allclose(cand.scores, exact, atol=0.01)
    assert np.all(np.diff(cand.scores) <= 0)


def test_rotation_keeps_inner_products():
    x, queries = structured(3000)
    index = build(x, IndexConfig(**SMALL))
    assert index.fitted and index._rot is not None
    np.testing.assert_allclose(index._rot.T @ index._rot, np.eye(64), atol=1e-5)
    q_pre, q_rest = index._query(queries[0])
    full = index._pre[:3000].astype(np.float32) @ q_pre * index._sp[:3000]
    full += index._rest[:3000].astype(np.float32) @ q_rest * index._sr[:3000]
    np.testing.assert_allclose(full, x[index._ids[:3000] - 100] @ queries[0], atol=0.02)


def test_two_stage_pool_equals_the_full_int8_scan_and_recall_at_10_is_at_least_099():
    # 12k rows, prefix of 16 of 64 coordinates: the candidate pool must be the one a full scan finds.
    x, queries = structured(12_000)
    index = build(x, IndexConfig(**SMALL))
    ids = np.arange(100, 100 + len(x))
    same = 0
    for q in queries:
        pool = index.search(q, 64).ids
        q_pre, q_rest = index._query(q)
        n = index._n
        full = index._pre[:n].astype(np.float32) @ q_pre * index._sp[:n]
        full += index._rest[:n].astype(np.float32) @ q_rest * index._sr[:n]
        same += len(set(pool.tolist()) & set(index._ids[np.argsort(-full)[:64]].tolist()))
    assert same / (64 * len(queries)) >= 0.99
    assert recall_at_10(index, x, queries, 64, ids) >= 0.99


def test_growth_in_small_batches_with_drifting_content_keeps_recall():
    # Rows arrive sorted by mixture component (a library added folder by folder): the first rotation
    # is fitted on a few components only; the rule's allowance must still keep the pool exact.
    x, queries = structured(8000)
    order = np.argsort(x @ np.random.default_rng(2).standard_normal(64))  # content-sorted arrival
    x = x[order]
    ids = np.arange(100, 100 + len(x))
    grown = build(x, IndexConfig(**SMALL), batch=64)
    assert len(grown) == len(x) and grown.fitted
    assert recall_at_10(grown, x, queries, 64, ids) >= 0.99


def test_rescoring_stops_at_the_cap():
    x, queries = structured(6000)
    index = build(x, IndexConfig(**{**SMALL, "min_rescore_cap": 300, "max_rescore_fraction": 0.0}))
    seen: list[int] = []
    real = index._rest_scores
    index._rest_scores = lambda pos, q: (seen.append(len(pos)), real(pos, q))[1]
    for q in queries[:10]:
        seen.clear()
        assert len(index.search(q, 64).ids) == 64
        assert 0 < sum(seen) <= 300


def test_re_added_id_replaces_its_old_vector():
    x, _ = structured(300)
    index = build(x, IndexConfig())
    q, s = quantize_int8(-x[:1])  # image 100 re-embedded as the opposite vector
    index.add(np.array([100]), q, s)
    assert len(index) == 300
    cand = index.search(-x[0], 1)
    assert cand.ids.tolist() == [100] and cand.scores[0] > 0.98
    assert 100 not in index.search(x[0], 5).ids


@pytest.mark.parametrize("n_allowed", [15, 1500, 6000])
def test_allowed_ids_restrict_results_in_brute_and_ivf_modes(n_allowed):
    x, queries = structured(8000, seed=3)
    ids = np.arange(100, 100 + len(x))
    index = build(x, IndexConfig(**SMALL))
    allowed = np.random.default_rng(1).choice(ids, n_allowed, replace=False)
    for q in queries[:5]:
        cand = index.search(q, 10, allowed_ids=allowed)
        assert len(cand.ids) == 10 and set(cand.ids) <= set(allowed.tolist())
        exact = x[allowed - 100] @ q
        truth = allowed[np.argsort(-exact)[:10]]
        assert len(set(truth.tolist()) & set(cand.ids.tolist())) >= 8


def test_removed_and_unknown_ids():
    x, queries = structured(500)
    index = build(x, IndexConfig())
    index.remove(np.array([100, 101, 99999]))
    assert len(index) == 498 and not index.contains(100) and index.contains(102)
    assert {100, 101}.isdisjoint(index.search(queries[0], 498).ids.tolist())
    assert len(index.search(queries[0], 5, allowed_ids=np.array([99999])).ids) == 0


def test_nbytes_is_about_a_quarter_of_float32():
    x, _ = structured(20_000, d=256)
    index = build(x, IndexConfig(**SMALL))
    assert index.fitted and index.nbytes < 0.3 * x.nbytes


def test_a_filter_excluding_most_rows_never_returns_an_excluded_one():
    # 30% allowed takes the contiguous-scan path, where excluded rows score -inf and must never come back.
    x, queries = structured(6000, seed=5)
    ids = np.arange(100, 100 + len(x))
    index = build(x, IndexConfig(**{**SMALL, "first_pass": 4000}))
    allowed = ids[::3][:1800]
    for q in queries[:5]:
        got = index.search(q, 64, allowed_ids=allowed).ids
        assert len(got) == 64 and set(got.tolist()) <= set(allowed.tolist())


def test_scan_scores_are_the_exact_integer_dot_products_whatever_the_split(monkeypatch):
    from app.core import vector_index as vi

    rng = np.random.default_rng(3)
    block = rng.integers(-127, 128, (50_001, 96), dtype=np.int8)
    block[0] = 127  # the largest sums a row can have
    q8 = rng.integers(-127, 128, (1, 96), dtype=np.int8)
    q8[0] = 127
    truth = (block.astype(np.int64) @ q8[0].astype(np.int64)).astype(np.float64)
    monkeypatch.setattr(vi, "_THREADED_SCAN_ELEMS", 1 << 60)
    one = vi.scan(block, q8)
    monkeypatch.setattr(vi, "_THREADED_SCAN_ELEMS", 0)
    monkeypatch.setattr(vi, "_scan_workers", lambda elements: 3)
    threaded = vi.scan(block, q8)
    rows = rng.permutation(len(block))[:7000]  # scattered rows, gathered in several chunks
    assert one.dtype == np.float32 and one[0] == 96 * 127 * 127
    assert np.array_equal(one, truth) and np.array_equal(threaded, truth)
    assert np.array_equal(vi.scan(block, q8, rows), truth[rows])


def test_query_quantisation_moves_a_score_by_less_than_its_rounding_bound():
    from app.core.vector_index import quantize_query, scan

    x, queries = structured(3000)
    q8, s = quantize_int8(x)
    for q in queries[:10]:
        qq, sq = quantize_query(q)
        got = scan(q8, qq) * s * sq
        ref = q8.astype(np.float32) @ q * s
        bound = np.abs(q8).sum(axis=1) * s * sq / 2  # each query coordinate is off by at most sq / 2
        assert np.all(np.abs(got - ref) <= bound + 1e-6)
