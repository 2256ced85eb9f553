"""Per-label thresholds fitted from the user's decisions."""

from __future__ import annotations

import numpy as np
import pytest

from app.core import tag_store
from app.core.calibration import calibrate, fit_threshold, precision_coverage
from app.core.paths import demo_model_dir, resources_dir
from app.core.store import Store
from app.core.tagging import tag_library
from tests.builders.tags import FakeEmbedder, add_images, mix, orthogonal_labels


def test_fit_threshold_picks_the_loosest_cut_that_keeps_the_target_precision():
    scores = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.65, 0.6, 0.5])
    positive = np.array([1, 1, 1, 0, 1, 1, 0, 1], bool)
    everyone = np.ones(8, bool)
    # precision of the top-j: 1, 1, 1, .75, .8, .83, .71, .75
    assert fit_threshold(scores, everyone, positive, target=0.95) == pytest.approx(0.85)
    assert fit_threshold(scores, everyone, positive, target=0.8) == pytest.approx(0.65)
    assert fit_threshold(scores, everyone, positive, target=0.7) == pytest.approx(0.5)


def test_fit_threshold_never_splits_tied_scores_and_can_accept_nothing():
    scores = np.array([0.9, 0.9, 0.8])
    positive = np.array([1, 0, 1], bool)
    t = fit_threshold(scores, np.ones(3, bool), positive, target=0.95)
    assert t > 0.9  # accepting one of the tied 0.9s would need splitting the tie
    assert precision_coverage(scores >= t, positive) == (None, 0.0)
    margin_fails = np.array([True, True, False])
    assert fit_threshold(scores, margin_fails, positive, target=0.5) == pytest.approx(0.9)


def _planted_library(rng: np.random.Generator):
    """Cats, and foxes that look like cats (the planted wrong 'cat' tags); two halves: decided and held out."""
    store = Store(":memory:")
    emb = FakeEmbedder(logit_scale=10.0)
    cats = [mix({0: 1.0, 1: float(rng.uniform(0, 0.4))}) for _ in range(80)]
    foxes = [mix({0: 1.0, 2: float(rng.uniform(0.45, 0.8))}) for _ in range(40)]
    truth = np.array([True] * 80 + [False] * 40)
    ids = np.array(add_images(store, emb.model_id, np.stack(cats + foxes)))
    decided_half = np.zeros(len(ids), bool)
    decided_half[::2] = True
    return store, emb, ids, truth, decided_half


def _cat_precision(store, ids, truth, subset):
    tagged = {t.image_id for t in tag_store.list_tags(store, status="auto", label="cat")}
    hit = np.array([i in tagged for i in ids]) & subset
    return (hit & truth).sum() / max(1, hit.sum()), (hit & truth).sum() / (truth & subset).sum()


def test_calibration_raises_precision_on_a_label_with_planted_wrong_auto_tags():
    store, emb, ids, truth, decided_half = _planted_library(np.random.default_rng(0))
    labels = orthogonal_labels(["cat", "dog", "fox"])
    list(tag_library(store, emb, labels))
    p_before, cov_before = _cat_precision(store, ids, truth, ~decided_half)
    assert p_before < 0.8  # the planted foxes really do pollute 'cat'
    # The user reviews the 'cat' auto tags of one half: confirms the cats, rejects the foxes.
    path = {t.image_id: t.path for t in tag_store.list_tags(store, label="cat")}
    for i, is_cat, decide in zip(ids, truth, decided_half, strict=True):
        if decide and int(i) in path:
            tag_store.set_decision(store, path[int(i)], "cat", "confirmed" if is_cat else "rejected")
    report = calibrate(store, emb, labels, target_precision=0.95)
    (cat,) = report.labels
    assert cat.fitted and cat.min_score > 0.6
    assert cat.precision_after >= 0.95 > cat.precision_before
    assert tag_store.load_thresholds(store, emb.model_id) == {"cat": (pytest.approx(cat.min_score), 0.1)}
    list(tag_library(store, emb, labels))  # re-tag with the fitted threshold
    p_after, cov_after = _cat_precision(store, ids, truth, ~decided_half)
    assert p_after >= p_before + 0.15 and p_after >= 0.9  # on the held-out half
    assert cov_after >= 0.6
    assert report.to_json()["labels"][0]["label"] == "cat"


def test_labels_with_too_few_decisions_keep_the_global_defaults():
    store = Store(":memory:")
    emb = FakeEmbedder(logit_scale=10.0)
    ids = add_images(store, emb.model_id, np.stack([mix({0: 1.0}), mix({0: 1.0, 1: 0.5})]))
    list(tag_library(store, emb, orthogonal_labels(["cat", "dog"])))
    tag_store.set_decision(store, "/lib/img_00000.png", "cat", "confirmed")
    tag_store.set_decision(store, "/lib/img_00001.png", "cat", "rejected")
    report = calibrate(store, emb, orthogonal_labels(["cat", "dog"]), min_score=0.6, min_examples=8)
    (cat,) = report.labels
    assert not cat.fitted and cat.min_score == 0.6 and (cat.n_confirmed, cat.n_rejected) == (1, 1)
    assert tag_store.load_thresholds(store, emb.model_id) == {}
    assert len(ids) == 2


MIN_EXAMPLES = 6


@pytest.mark.skipif(
    not (demo_model_dir() / "config.json").is_file(), reason=f"demo model not built at {demo_model_dir()}"
)
def test_calibration_on_the_demo_model_removes_wrong_tags_from_a_label_missing_its_neighbour(tmp_path):
    """Orange shapes are planted in a library whose vocabulary lacks orange: under a loose rule they take
    wrong auto tags (mostly red or yellow). Decisions on half the library must fix the other half."""
    from app.core.backends import open_embedder
    from app.core.scenes import make_scenes, render
    from app.core.tag_vocab import Vocabulary, label_embeddings, load_vocabulary

    emb = open_embedder(demo_model_dir(), "mlx")
    full = load_vocabulary(resources_dir() / "tags" / "demo.txt")
    keep = [i for i, lb in enumerate(full.labels) if not lb.startswith("orange")]
    vocab = Vocabulary(
        labels=tuple(full.labels[i] for i in keep),
        groups=tuple(full.groups[i] for i in keep),
        phrases=tuple(full.phrases[i] for i in keep),
        templates=full.templates,
        background=full.background,
    )
    labels = label_embeddings(emb, vocab, cache_dir=tmp_path)
    scenes = make_scenes(424_242, 480, n_shapes=1)
    x = np.concatenate([emb.embed_images([render(s) for s in scenes[i : i + 96]]) for i in range(0, 480, 96)])
    truth = [f"{s.shapes[0].colour} {s.shapes[0].kind}" for s in scenes]
    loose = {"min_score": 0.2, "min_margin": 0.0}  # a user who loosened the global rule
    with Store(":memory:") as store:
        ids = np.array(add_images(store, emb.model_id, x))
        list(tag_library(store, emb, labels, **loose))
        decided_half = np.arange(len(ids)) % 2 == 0
        auto = {t.image_id: t for t in tag_store.list_tags(store, status="auto")}
        wrong = [
            auto[i].label
            for i, t in zip(ids.tolist(), truth, strict=True)
            if i in auto and auto[i].label != t
        ]
        decided_count = {
            lb: sum(
                1
                for i, s in zip(ids.tolist(), decided_half, strict=True)
                if s and i in auto and auto[i].label == lb
            )
            for lb in set(wrong)
        }
        candidates = [lb for lb in set(wrong) if decided_count[lb] >= MIN_EXAMPLES]
        assert candidates, f"the planted orange shapes drew too few wrong auto tags: {sorted(wrong)}"
        target = max(candidates, key=wrong.count)

        def precision(subset):
            applied = [(i, t) for i, t, s in zip(ids.tolist(), truth, subset, strict=True) if s and i in auto]
            hits = [auto[i].label == t for i, t in applied if auto[i].label == target]
            return sum(hits) / max(1, len(hits))

        before = precision(~decided_half)
        for i, t, s in zip(ids.tolist(), truth, decided_half, strict=True):
            if s and i in auto:  # the user reviews every auto tag of the decided half
                decision = "confirmed" if auto[i].label == t else "rejected"
                tag_store.set_decision(store, auto[i].path, auto[i].label, decision)
        report = calibrate(store, emb, labels, **loose, target_precision=0.95, min_examples=MIN_EXAMPLES)
        fitted = {c.label: c for c in report.labels}[target]
        assert fitted.fitted and fitted.min_score > loose["min_score"]
        list(tag_library(store, emb, labels, **loose))
        auto = {t.image_id: t for t in tag_store.list_tags(store, status="auto")}
        after = precision(~decided_half)
    assert before < 0.9, f"'{target}' precision {before:.2f} before calibration: nothing planted"
    assert after >= before + 0.1, f"'{target}': precision {before:.2f} -> {after:.2f}"
