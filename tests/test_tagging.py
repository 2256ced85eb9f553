"""Zero-shot tagging: vocabularies, prompt ensembling, scores, the abstaining decision rule, the demo model."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import UsageError
from app.core.paths import demo_model_dir, resources_dir
from app.core.tag_vocab import Vocabulary, label_embeddings, load_vocabulary
from app.core.tagging import AUTO, DROP, REVIEW, Scorer, Thresholds, decisions_to_rows
from app.core.vectors import quantize_int8
from tests.builders.tags import FakeEmbedder, mix, orthogonal_labels

SEED_LABELS = ["damaged", "intact", "scratched", "dirty"]


def test_seed_abstention_example_applies_clear_damage_and_queues_ambiguous_corner():
    # Softmax scores (labels..., background) as a CLIP-family model would give them:
    # clear_damage: 'damaged' at 0.82 leads 'scratched' (0.09) by far; ambiguous_corner: 0.46 vs 0.41.
    scores = np.array(
        [
            [0.82, 0.05, 0.09, 0.03, 0.01],  # clear_damage
            [0.46, 0.41, 0.08, 0.03, 0.02],  # ambiguous_corner
        ],
        np.float32,
    )
    scorer = Scorer(orthogonal_labels(SEED_LABELS), "clip", 100.0, None)
    d = scorer.decide_scores(scores.copy(), Thresholds(min_score=0.60, min_margin=0.10))
    rows = decisions_to_rows(np.array([1, 2]), d, scorer.labels.labels)
    assert rows[0] == (1, "damaged", pytest.approx(0.82), "auto")
    assert [r for r in rows if r[0] == 1] == [rows[0]]  # an applied winner needs no review candidates
    queued = [(lb, st) for i, lb, _, st in rows if i == 2]
    assert queued == [("damaged", "review"), ("intact", "review")]  # 0.08 < review floor: not a candidate
    assert d.competitor[0, 0] == pytest.approx(0.09) and d.competitor[1, 0] == pytest.approx(0.41)


def test_margin_blocks_a_high_score_with_a_close_runner_up():
    scorer = Scorer(orthogonal_labels(SEED_LABELS), "clip", 100.0, None)
    s = np.array([[0.50, 0.45, 0.03, 0.01, 0.01]], np.float32)
    assert scorer.decide_scores(s.copy(), Thresholds(min_score=0.45, min_margin=0.10)).state[0, 0] == REVIEW
    assert scorer.decide_scores(s.copy(), Thresholds(min_score=0.45, min_margin=0.05)).state[0, 0] == AUTO


def test_image_whose_best_label_loses_to_the_background_gets_no_tag():
    scorer = Scorer(orthogonal_labels(SEED_LABELS), "clip", 100.0, None)
    s = np.array([[0.30, 0.15, 0.05, 0.05, 0.45]], np.float32)
    assert (scorer.decide_scores(s, Thresholds()).state == DROP).all()


def test_per_label_thresholds_override_the_global_rule():
    scorer = Scorer(orthogonal_labels(SEED_LABELS), "clip", 100.0, None)
    s = np.array([[0.70, 0.20, 0.05, 0.03, 0.02]], np.float32)
    strict = Thresholds(per_label={"damaged": (0.75, 0.1)})
    assert scorer.decide_scores(s.copy(), Thresholds()).state[0, 0] == AUTO
    assert scorer.decide_scores(s.copy(), strict).state[0, 0] == REVIEW


def test_a_peaked_softmax_far_below_the_library_cosine_level_gets_no_tag():
    from app.core.tagging import library_cosine

    scorer = Scorer(orthogonal_labels(SEED_LABELS), "clip", 100.0, None)
    library = np.stack([mix({0: 1.0, 9: 0.3}), mix({1: 1.0, 9: 0.2}), mix({2: 1.0, 9: 0.4})])
    odd = mix({0: 0.2, 9: 1.0})[None]  # cosine 0.2 with 'damaged', ~0 with the rest: softmax still ~1
    assert library_cosine(scorer, library) == pytest.approx(float(library[0, 0]), abs=1e-6)
    floor = 0.6 * library_cosine(scorer, library)
    loose = scorer.decide(odd, Thresholds())
    strict = scorer.decide(odd, Thresholds(min_cosine=floor))
    assert loose.state[0, 0] == AUTO and loose.cosine[0, 0] == pytest.approx(0.196, abs=1e-3)
    assert (strict.state == DROP).all()
    assert (scorer.decide(library, Thresholds(min_cosine=floor)).state[:, 0] == AUTO).all()


def test_softmax_scores_match_the_reference_formula():
    rng = np.random.default_rng(0)
    lm = orthogonal_labels(SEED_LABELS)
    emb = rng.standard_normal((5, 32)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    logits = 37.0 * emb.astype(np.float64) @ np.vstack([lm.vecs, lm.none[None]]).T.astype(np.float64)
    ref = np.exp(logits - logits.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    got = Scorer(lm, "clip", 37.0, None).scores(emb)
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_sigmoid_scores_are_independent_per_label():
    rng = np.random.default_rng(1)
    lm = orthogonal_labels(SEED_LABELS)
    emb = rng.standard_normal((5, 32)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cos = emb.astype(np.float64) @ np.vstack([lm.vecs, lm.none[None]]).T
    ref = 1 / (1 + np.exp(-(10.0 * cos - 2.0)))
    np.testing.assert_allclose(Scorer(lm, "siglip", 10.0, -2.0).scores(emb), ref, atol=1e-6)


def test_int8_rows_with_scales_score_like_the_dequantized_vectors():
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((16, 32)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    q, scale = quantize_int8(emb)
    scorer = Scorer(orthogonal_labels(SEED_LABELS), "clip", 100.0, None)
    np.testing.assert_allclose(
        scorer.scores(q.astype(np.float32), row_scale=scale), scorer.scores(q * scale[:, None]), atol=1e-5
    )


def test_fast_softmax_path_decides_exactly_like_the_full_probability_matrix():
    rng = np.random.default_rng(3)
    labels = [f"l{i}" for i in range(40)]
    lab = rng.standard_normal((41, 64)).astype(np.float32)
    lab /= np.linalg.norm(lab, axis=1, keepdims=True)
    from app.core.tag_vocab import LabelMatrix

    lm = LabelMatrix(tuple(labels), ("g",) * 40, lab[:40], lab[40])
    emb = 0.4 * lab[rng.integers(0, 41, 1300)] + rng.standard_normal((1300, 64)).astype(np.float32) / 8
    q, scale = quantize_int8(emb / np.linalg.norm(emb, axis=1, keepdims=True))
    scorer, th = Scorer(lm, "clip", 30.0, None), Thresholds(min_score=0.5, min_margin=0.1)
    fast = scorer.decide(q, th, row_scale=scale)  # 1300 rows: several chunks
    full = scorer.decide_scores(scorer.scores(q, row_scale=scale), th)
    np.testing.assert_array_equal(fast.label, full.label)
    np.testing.assert_array_equal(fast.state, full.state)
    np.testing.assert_allclose(fast.score, full.score, atol=1e-5)
    np.testing.assert_allclose(fast.none, full.none, atol=1e-5)
    assert {AUTO, REVIEW, DROP} <= set(np.unique(fast.state).tolist())


def test_siglip_applies_several_labels_from_different_groups_but_not_close_rivals():
    lm = orthogonal_labels(["cat", "dog", "indoor", "outdoor"], groups=["animal", "animal", "place", "place"])
    scorer = Scorer(lm, "siglip", 10.0, -5.0)
    # cat and indoor both clear; dog close to cat would block cat by margin
    both = mix({0: 0.62, 2: 0.62})
    rivals = mix({0: 0.6, 1: 0.58})
    d = scorer.decide(np.stack([both, rivals]), Thresholds(min_score=0.6, min_margin=0.1))
    applied = [{lm.labels[j] for j in d.label[i][d.state[i] == AUTO]} for i in range(2)]
    assert applied[0] == {"cat", "indoor"}
    assert applied[1] == set() and (d.state[1] == REVIEW).sum() == 2


def test_vocabulary_file_format(tmp_path):
    base = tmp_path / "base.txt"
    base.write_text("[pets]\ncat\ndog = a dog; a puppy\n")
    own = tmp_path / "own.txt"
    own.write_text(
        "@include base.txt\n@template a photo of {}.\n@template {}\n@background nothing\n"
        "# a comment\n[Work Stuff]\n  Receipt   # trailing comment\nDog = a hound\n"
    )
    v = load_vocabulary(own)
    assert v.labels == ("cat", "dog", "receipt")
    assert v.groups == ("pets", "work stuff", "work stuff")
    assert v.phrases == (("a cat",), ("a hound",), ("a receipt",))
    assert v.templates == ("a photo of {}.", "{}") and v.background == ("nothing",)
    assert v.prompts(1) == ["a photo of a hound.", "a hound"]
    with pytest.raises(UsageError):
        load_vocabulary(tmp_path / "missing.txt")
    (tmp_path / "bad.txt").write_text("@tempalte {}\n")
    with pytest.raises(UsageError, match="unknown directive"):
        load_vocabulary(tmp_path / "bad.txt")


def test_prompt_ensemble_is_the_normalised_mean_of_normalised_prompt_embeddings(tmp_path):
    v = Vocabulary(labels=("cat", "dog"), groups=("a", "a"), phrases=(("a cat", "a kitty"), ("a dog",)))
    emb = FakeEmbedder()
    lm = label_embeddings(emb, v, cache_dir=tmp_path)
    prompts = v.prompts(0)
    assert len(prompts) == 2 * len(v.templates)
    ref = emb.embed_texts(prompts).mean(0)
    np.testing.assert_allclose(lm.vecs[0], ref / np.linalg.norm(ref), atol=1e-6)
    bg = emb.embed_texts(list(v.background)).mean(0)
    np.testing.assert_allclose(lm.none, bg / np.linalg.norm(bg), atol=1e-6)


def test_label_embeddings_are_cached_per_model_and_vocabulary(tmp_path):
    v = Vocabulary(labels=("cat", "dog"), groups=("a", "a"), phrases=(("a cat",), ("a dog",)))
    emb = FakeEmbedder()
    first = label_embeddings(emb, v, cache_dir=tmp_path)
    calls = len(emb.text_calls)
    again = label_embeddings(emb, v, cache_dir=tmp_path)
    assert len(emb.text_calls) == calls  # served from the cache
    np.testing.assert_array_equal(first.vecs, again.vecs)
    label_embeddings(emb, Vocabulary(("cat",), ("a",), (("a cat",),)), cache_dir=tmp_path)
    label_embeddings(FakeEmbedder(model_id="other"), v, cache_dir=tmp_path)
    assert len(emb.text_calls) > calls  # a new vocabulary is embedded
    assert len(list(tmp_path.glob("*/*.npy"))) == 3


def test_default_vocabulary_has_a_few_hundred_grouped_everyday_labels():
    v = load_vocabulary()
    assert 250 <= len(v.labels) <= 1000
    for group in ("animals", "food", "scenes", "weather and sky", "events", "documents", "screenshots"):
        assert group in v.groups
    for label in ("cat", "dog", "pizza", "beach", "snow", "wedding", "receipt", "screenshot", "car"):
        assert label in v.labels
    assert all("{}" in t for t in v.templates)


def test_a_model_folder_names_its_vocabulary_wherever_it_is(tmp_path):
    """A copy of the demo model (a candidate being calibrated in /tmp) keeps the demo vocabulary."""
    import json
    import shutil

    from app.core.tag_vocab import vocabulary_for_model

    tags = resources_dir() / "tags"
    assert vocabulary_for_model(demo_model_dir()) == tags / "demo.txt"
    copy = tmp_path / "candidate"
    copy.mkdir()
    shutil.copy(demo_model_dir() / "config.json", copy / "config.json")
    assert vocabulary_for_model(copy) == tags / "demo.txt"

    cfg = json.loads((copy / "config.json").read_text())
    del cfg["fovea"]["vocabulary"]  # a folder that names none: everyday labels, as before
    (copy / "config.json").write_text(json.dumps(cfg))
    assert vocabulary_for_model(copy) == tags / "default.txt"
    assert vocabulary_for_model(tmp_path / "no-such-model") == tags / "default.txt"

    cfg["fovea"]["vocabulary"] = "../../etc/passwd"
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        UsageError, match=r"candidate/config.json.*not a bundled vocabulary \(default, demo\)"
    ):
        vocabulary_for_model(copy)


def test_the_demo_model_is_trained_to_declare_its_vocabulary(tmp_path):
    import json

    from training.known_words import main

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    assert main([str(tmp_path)]) == 0
    fovea = json.loads((tmp_path / "config.json").read_text())["fovea"]
    assert fovea["vocabulary"] == "demo" and "circle" in fovea["known_words"]


def test_demo_vocabulary_uses_only_words_the_demo_generator_knows():
    from training.scenes import COLOURS, SHAPES, vocabulary_corpus

    v = load_vocabulary(resources_dir() / "tags" / "demo.txt")
    assert set(v.labels) == {f"{c} {k}" for c in COLOURS for k in SHAPES}
    known = set(" ".join(vocabulary_corpus()).split())
    texts = [p for i in range(len(v.labels)) for p in v.prompts(i)] + list(v.background)
    assert {w for t in texts for w in t.split()} <= known


# ---- the demo model ---------------------------------------------------------------------------

needs_demo = pytest.mark.skipif(
    not (demo_model_dir() / "config.json").is_file(),
    reason=f"demo model not built at {demo_model_dir()} (python -m training.train_clip, then convert)",
)


DEMO_TUNING_SEED = 777_001  # a stream apart from training (default_rng([seed, step])) and the held-out seeds
DEMO_MIN_MARGIN = 0.10


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo model, the demo vocabulary's label matrix, a held-out set of single-shape scenes, and
    the demo model's `min_score`: the loosest one keeping precision >= 0.97 on a separate tuning split,
    fitted exactly as calibration fits a label (the demo model's logit scale is its own, not CLIP's 100)."""
    from app.core.backends import open_embedder
    from app.core.calibration import fit_threshold
    from app.core.scenes import make_scenes, render
    from training.quality import heldout_single

    emb = open_embedder(demo_model_dir(), "mlx")
    vocab = load_vocabulary(resources_dir() / "tags" / "demo.txt")
    lm = label_embeddings(emb, vocab, cache_dir=tmp_path_factory.mktemp("labels"))

    def embed(scenes):
        images = [render(s) for s in scenes]
        return np.concatenate([emb.embed_images(images[i : i + 100]) for i in range(0, len(images), 100)])

    def classes(scenes):
        return [f"{s.shapes[0].colour} {s.shapes[0].kind}" for s in scenes]

    tune = make_scenes(DEMO_TUNING_SEED, 300, n_shapes=1)
    d = Scorer.for_embedder(emb, lm).decide(embed(tune), Thresholds(0.0, 0.0, 0.0))
    right = np.array([lm.labels[j] == t for j, t in zip(d.label[:, 0], classes(tune), strict=True)])
    margin_ok = d.score[:, 0] - d.competitor[:, 0] >= DEMO_MIN_MARGIN
    min_score = fit_threshold(d.score[:, 0], margin_ok, right, target=0.97)
    held_out = heldout_single(400)
    return emb, lm, embed(held_out), classes(held_out), Thresholds(min_score, DEMO_MIN_MARGIN)


def _auto_tags(store) -> dict[int, str]:
    from app.core import tag_store

    return {t.image_id: t.label for t in tag_store.list_tags(store, status="auto")}


@needs_demo
def test_demo_model_auto_tags_are_precise_and_cover_most_of_a_heldout_set(demo):
    from app.core.store import Store
    from app.core.tagging import tag_library
    from tests.builders.tags import add_images

    emb, lm, x, truth, th = demo
    with Store(":memory:") as store:
        ids = add_images(store, emb.model_id, x)
        list(tag_library(store, emb, lm, min_score=th.min_score, min_margin=th.min_margin))
        auto = _auto_tags(store)
    correct = sum(auto.get(i) == t for i, t in zip(ids, truth, strict=True))
    precision, coverage = correct / max(1, len(auto)), correct / len(ids)
    msg = f"precision {precision:.3f}, coverage {coverage:.3f} at min_score {th.min_score:.3f}"
    assert precision >= 0.95, msg
    assert coverage >= 0.80, msg


@needs_demo
def test_demo_model_gives_no_auto_tag_to_pure_noise_or_blank_images_in_a_library(demo):
    from app.core.store import Store
    from app.core.tagging import tag_library
    from tests.builders.tags import add_images

    emb, lm, x, _, th = demo  # the same rule that reaches the coverage above
    from training.quality import blank_and_noise_images

    odd = emb.embed_images(blank_and_noise_images())
    with Store(":memory:") as store:
        add_images(store, emb.model_id, x)
        odd_ids = add_images(store, emb.model_id, odd, prefix="/lib/odd")
        list(tag_library(store, emb, lm, min_score=th.min_score, min_margin=th.min_margin))
        auto = _auto_tags(store)
    assert not [auto[i] for i in odd_ids if i in auto], f"auto-tagged: {[auto.get(i) for i in odd_ids]}"


@needs_demo
def test_demo_decision_survives_retagging_and_a_rename_through_the_indexer(demo, tmp_path):
    from app.core import tag_store
    from app.core.indexer import index
    from app.core.scenes import render
    from app.core.store import Store
    from app.core.tagging import tag_library
    from training.quality import heldout_single

    emb, lm, _, _, _ = demo
    lib = tmp_path / "photos"
    lib.mkdir()
    scenes = heldout_single(8)
    for k, scene in enumerate(scenes):
        render(scene).save(lib / f"scene_{k}.png")
    truth = [f"{s.shapes[0].colour} {s.shapes[0].kind}" for s in scenes]
    first, second = lib / "scene_0.png", lib / "scene_1.png"
    moved = lib / "moved" / "renamed.png"
    with Store(tmp_path / "lib.sqlite") as store:
        list(index(store, emb, [lib]))
        list(tag_library(store, emb, lm))
        # Reject the label the model should want most (the true one) and confirm one of the user's own.
        tag_store.set_decision(store, first, truth[0], "rejected")
        tag_store.set_decision(store, second, "unicorn", "confirmed")
        moved.parent.mkdir()
        first.rename(moved)
        list(index(store, emb, [lib]))
        list(tag_library(store, emb, lm))
        list(tag_library(store, emb, lm, min_score=0.0, min_margin=0.0, review_floor=0.0))
        after = {(t.path, t.label): t.status for t in tag_store.list_tags(store)}
    assert after[(moved, truth[0])] == "rejected"
    assert after[(second, "unicorn")] == "confirmed"
    assert not any(p == first for p, _ in after)
