"""The exact MLX candidate path and the int8 index return the brute-force top-k; the choice between them."""

from __future__ import annotations

import numpy as np

from app.core.exact_index import ExactIndex, PathTiming, prefer_exact
from app.core.vector_index import IndexConfig, VectorIndex
from app.core.vectors import quantize_int8
from tests.test_vector_index import structured


def test_exact_mlx_scan_and_the_index_both_return_the_brute_force_top_10():
    x, queries = structured(6000)
    ids = np.arange(100, 100 + len(x))
    f16 = x.astype(np.float16)
    exact = ExactIndex(64)
    exact.add(ids, f16)
    index = VectorIndex(64, IndexConfig(exhaustive_below=1000, prefix_dims=16, first_pass=256))
    q8, s8 = quantize_int8(x)
    index.add(ids, q8, s8)
    for q in queries:
        truth = ids[np.argsort(-(f16.astype(np.float32) @ q), kind="stable")[:10]]
        got = exact.search(q, 10)  # MLX rounds its scores to float16: near-ties may swap at the 10th place
        np.testing.assert_allclose(got.scores, np.sort(f16.astype(np.float32) @ q)[::-1][:10], atol=2e-3)
        for pool in (exact.search(q, 64).ids, index.search(q, 64).ids):  # the engine rescores the pool
            rescored = pool[np.argsort(-(f16[pool - 100].astype(np.float32) @ q), kind="stable")[:10]]
            assert rescored.tolist() == truth.tolist()


def test_exact_path_filters_and_replaces():
    x, queries = structured(500, seed=4)
    ids = np.arange(1, 501)
    exact = ExactIndex(64)
    exact.add(ids, x.astype(np.float16))
    allowed = np.array([3, 7, 11, 400])
    got = exact.search(queries[0], 10, allowed_ids=allowed)
    assert sorted(got.ids.tolist()) == allowed.tolist()
    exact.add(np.array([5]), (-x[4:5]).astype(np.float16))  # image 5 re-embedded as the opposite vector
    assert len(exact) == 500 and exact.search(-x[4], 1).ids.tolist() == [5]


def test_the_exact_path_is_used_only_where_it_measures_faster_at_equal_recall():
    index = PathTiming(median_s=0.012, recall=0.995)
    assert prefer_exact(PathTiming(0.004, 1.0), index)  # Metal-like: faster and exact
    assert not prefer_exact(PathTiming(0.900, 1.0), index)  # a CPU: exact but slower
    assert not prefer_exact(PathTiming(0.004, 0.9), index)  # never trade recall for speed
