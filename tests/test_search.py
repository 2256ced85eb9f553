"""The search engine on a real temporary store: ranking, rclip terms, filters, refresh, weak hits, similar."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.core.contracts import Filters
from app.core.errors import UsageError
from app.core.search import SearchEngine, weak_threshold
from app.core.store import Store
from tests.builders import rows
from tests.builders.fake_embedder import FakeEmbedder

D = 32


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def add_images(store: Store, vectors: np.ndarray, folder: str = "/lib", **cols) -> list[int]:
    return rows.add_images(store, FakeEmbedder().model_id, vectors, folder, "img{:05d}.jpg", **cols)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "lib.sqlite") as s:
        yield s


def near(v: np.ndarray, noise: float, n: int, seed: int) -> np.ndarray:
    return unit(v + noise * np.random.default_rng(seed).standard_normal((n, D)))


def test_ranks_by_exact_cosine_and_flags_weak_hits(store):
    cat = FakeEmbedder.text_vector("cat")
    vecs = np.concatenate([near(cat, 0.05, 3, 1), near(-cat, 1.0, 200, 2)])
    ids = add_images(store, vecs)
    engine = SearchEngine(store, FakeEmbedder(images="mean-colour"))
    res = engine.search("cat", k=10)
    scores = [h.score for h in res.hits]
    assert [h.image_id for h in res.hits[:3]] == [ids[i] for i in np.argsort(-(vecs[:3] @ cat))]
    np.testing.assert_allclose(scores, np.sort(vecs @ cat)[::-1][:10], atol=2e-3)
    assert not res.no_strong_match and not res.hits[0].weak
    assert all(h.weak == (h.score < weak_threshold("clip", "text")) for h in res.hits)
    assert str(res.hits[0].path).startswith("/lib/img")


def test_no_strong_match_when_even_the_best_is_weak(store):
    add_images(store, near(-FakeEmbedder.text_vector("dog"), 0.1, 20, 3))
    res = SearchEngine(store, FakeEmbedder(images="mean-colour")).search(["dog"], k=5)
    assert res.no_strong_match and all(h.weak for h in res.hits) and len(res.hits) == 5


def test_weighted_terms_combine_as_normalised_sum(store):
    a, b = FakeEmbedder.text_vector("beach"), FakeEmbedder.text_vector("people")
    vecs = near(np.zeros(D), 1.0, 100, 4)
    add_images(store, vecs)
    engine = SearchEngine(store, FakeEmbedder(images="mean-colour"))
    q = unit(2 * a - b)
    res = engine.search(["2:beach", "-people"], k=5)
    np.testing.assert_allclose([h.score for h in res.hits], np.sort(vecs @ q)[::-1][:5], atol=2e-3)


def test_filters_by_folder_and_camera(store):
    sky = FakeEmbedder.text_vector("sky")
    in_a = add_images(store, near(sky, 0.3, 30, 5), folder="/a", camera="Canon EOS")
    in_b = add_images(store, near(sky, 0.1, 30, 6), folder="/b", camera="Nikon")
    engine = SearchEngine(store, FakeEmbedder(images="mean-colour"))
    assert {h.image_id for h in engine.search("sky", k=10, filters=Filters(folder="/a")).hits} <= set(in_a)
    assert {h.image_id for h in engine.search("sky", k=10, filters=Filters(camera="nikon")).hits} <= set(in_b)
    assert engine.search("sky", k=10, filters=Filters(folder="/nowhere")).hits == []


def test_refresh_picks_up_new_rows_incrementally(store):
    sun = FakeEmbedder.text_vector("sun")
    add_images(store, near(-sun, 0.5, 50, 7))
    engine = SearchEngine(store, FakeEmbedder(images="mean-colour"))
    assert engine.refresh() == 50 and engine.refresh() == 0
    (new,) = add_images(store, sun[None])
    assert engine.search("sun", k=1).hits[0].image_id == new  # search refreshes first
    assert len(engine.index) == 51


def test_reembedded_and_missing_images_are_not_returned_stale(store):
    moon = FakeEmbedder.text_vector("moon")
    ids = add_images(store, near(moon, 0.05, 5, 8))
    engine = SearchEngine(store, FakeEmbedder(images="mean-colour"))
    engine.refresh()
    with store.transaction():
        store.put_embeddings(FakeEmbedder(images="mean-colour").model_id, [ids[0]], -moon[None])
        store.conn.execute("UPDATE images SET status = 'missing' WHERE id = ?", (ids[1],))
    got = [h.image_id for h in engine.search("moon", k=5).hits]
    assert ids[1] not in got and got[-1] == ids[0] and len(got) == 4


def test_similar_uses_the_stored_vector_and_leaves_the_image_out(store, tmp_path):
    base = FakeEmbedder.text_vector("base")
    ids = add_images(store, np.concatenate([base[None], near(base, 0.05, 3, 9), near(-base, 1, 30, 10)]))
    emb = FakeEmbedder(images="mean-colour")
    engine = SearchEngine(store, emb)
    res = engine.similar(ids[0], k=3)
    assert {h.image_id for h in res.hits} == set(ids[1:4]) and not res.no_strong_match
    assert engine.similar("/lib/img00000.jpg", k=3).hits == res.hits
    assert emb.image_calls == 0
    outside = tmp_path / "q.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(outside)
    assert len(engine.similar(outside, k=3).hits) == 3 and emb.image_calls == 1
    assert engine.search([str(outside)], k=2).threshold == weak_threshold("clip", "image")


def test_usage_errors(store, tmp_path):
    engine = SearchEngine(store, FakeEmbedder(images="mean-colour"))
    with pytest.raises(UsageError):
        engine.search([])
    with pytest.raises(UsageError, match="does not exist"):
        engine.similar(tmp_path / "none.jpg")
    with pytest.raises(UsageError, match="no embedding"):
        engine.similar(12345)
    with pytest.raises(UsageError, match="cancel"):
        engine.search(["cat", "-cat"])


def test_empty_library_gives_empty_result(store):
    res = SearchEngine(store, FakeEmbedder(images="mean-colour")).search("anything")
    assert res.hits == [] and res.no_strong_match


def test_a_model_folders_measured_weak_cosine_overrides_the_family_default(store, tmp_path):
    import json

    from app.core.backends.ids import search_hints

    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "clip", "fovea": {"weak_cosine": {"text": 0.995}}})
    )
    assert search_hints(tmp_path) == {"text": 0.995}
    cat = FakeEmbedder.text_vector("cat")
    add_images(store, near(cat, 0.05, 3, 1))
    emb = FakeEmbedder(images="mean-colour")
    plain = SearchEngine(store, emb).search("cat", k=3)
    assert not plain.no_strong_match  # cosines ~0.9 clear CLIP's 0.20 default
    emb.weak_cosine = search_hints(tmp_path)
    strict = SearchEngine(store, emb).search("cat", k=3)
    assert strict.threshold == 0.995 and strict.no_strong_match and all(h.weak for h in strict.hits)
