"""Duplicate groups on a real temporary store: planted exact copies (hash) and near copies (cosine)."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.duplicates import find_duplicates, near_pairs
from app.core.errors import UsageError
from app.core.store import Store
from app.core.vectors import quantize_int8

MODEL = "fake-clip"


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def add(store: Store, vec: np.ndarray, content_hash: str | None, size: int = 100) -> int:
    with store.transaction() as conn:
        root = store.add_root("/lib", 0.0)
        n = conn.execute("SELECT count(*) FROM images").fetchone()[0]
        cur = conn.execute(
            "INSERT INTO images (root_id, path, size, content_hash, status) VALUES (?, ?, ?, ?, 'ok')",
            (root, f"/lib/{n:04d}.jpg", size, content_hash),
        )
        store.put_embeddings(MODEL, [cur.lastrowid], vec[None])
    return int(cur.lastrowid)


def test_planted_exact_and_near_copies_are_grouped(tmp_path):
    rng = np.random.default_rng(0)
    base = unit(rng.standard_normal((40, 64)))
    with Store(tmp_path / "lib.sqlite") as store:
        ids = [add(store, v, f"h{i}") for i, v in enumerate(base)]
        exact = add(store, base[3], "h3")  # byte-identical copy of image 3
        same_hash_other_size = add(store, -base[5], "h5", size=999)  # not a copy: sizes differ
        near_a = add(store, unit(base[7] + 0.02 * rng.standard_normal(64)), "n1")  # a re-encode of image 7
        near_b = add(store, unit(base[7] + 0.02 * rng.standard_normal(64)), "n2")
        groups = find_duplicates(store, MODEL, threshold=0.95)
    kinds = [(g.kind, g.image_ids) for g in groups]
    assert ("exact", [ids[3], exact]) in kinds
    near = [g for g in groups if g.kind == "near"]
    assert [g.image_ids for g in near] == [[ids[7], near_a, near_b]]
    assert 0.95 <= near[0].score < 1.0
    assert all(same_hash_other_size not in g.image_ids for g in groups)
    assert [str(p) for p in groups[0].paths] == ["/lib/0003.jpg", "/lib/0040.jpg"]


def test_threshold_is_validated(tmp_path):
    with Store(tmp_path / "lib.sqlite") as store, pytest.raises(UsageError):
        find_duplicates(store, MODEL, threshold=1.5)


def test_bucketed_near_pairs_find_the_same_planted_pairs_as_all_pairs():
    rng = np.random.default_rng(1)
    centers = unit(rng.standard_normal((30, 48)))
    x = unit(centers[rng.integers(0, 30, 3000)] + 0.35 * rng.standard_normal((3000, 48)))
    planted = rng.choice(3000, 60, replace=False)
    copies = unit(x[planted] + 0.03 * rng.standard_normal((60, 48)))
    x = np.concatenate([x, copies])
    q, _ = quantize_int8(x)  # the int8 rows find_duplicates hands in
    full = near_pairs(q, 0.95, exact_below=10_000)
    bucketed = near_pairs(q, 0.95, exact_below=100)
    pairs = lambda r: set(zip(r[0].tolist(), r[1].tolist(), strict=True))  # noqa: E731
    truth = {(int(a), 3000 + k) for k, a in enumerate(planted)}
    assert truth <= pairs(full)
    exact = x @ x.T
    np.testing.assert_allclose(full[2], exact[full[0], full[1]], atol=5e-3)
    assert len(pairs(bucketed) & truth) >= 0.95 * len(truth)  # the documented miss rate is small
    assert pairs(bucketed) <= pairs(full)
