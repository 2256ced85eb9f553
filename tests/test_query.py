"""The rclip-style query parser: weights, signs, image paths, and the errors for queries that mean nothing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from app.core.errors import UsageError
from app.core.query import QueryTerm, combine, parse_query, parse_term

# Words that cannot be mistaken for a weight prefix, a sign or a path.
words = st.text(alphabet=st.characters(whitelist_categories=("L",)), min_size=1, max_size=12).map(str.strip)
words = words.filter(lambda w: w != "")
weights = st.floats(min_value=-100, max_value=100, allow_nan=False).filter(lambda w: w != 0)


@given(words)
def test_plain_text_has_weight_one(w):
    assert parse_term(w) == QueryTerm("text", w, 1.0)


@given(words)
def test_plus_and_minus_give_unit_weights(w):
    assert parse_term("+" + w) == QueryTerm("text", w, 1.0)
    assert parse_term("-" + w) == QueryTerm("text", w, -1.0)


@given(weights, words)
def test_weight_prefix_round_trips(weight, w):
    term = parse_term(f"{weight!r}:{w}")
    assert term.kind == "text" and term.value == w
    assert term.weight == pytest.approx(weight)


@given(st.lists(st.text(max_size=20), max_size=5))
def test_any_input_parses_or_raises_usage_error(terms):
    try:
        parsed = parse_query(terms)
    except UsageError:
        return
    assert len(parsed) == len(terms) and any(t.weight > 0 for t in parsed)


def test_examples_from_the_rclip_syntax():
    got = parse_query(["cat", "+grass", "-dog", "2:sunset", "0.5:sky", "-1:car", ".5:tree"])
    assert [(t.value, t.weight) for t in got] == [
        ("cat", 1.0),
        ("grass", 1.0),
        ("dog", -1.0),
        ("sunset", 2.0),
        ("sky", 0.5),
        ("car", -1.0),
        ("tree", 0.5),
    ]
    assert parse_query("a cat on a mat") == [QueryTerm("text", "a cat on a mat", 1.0)]


def test_existing_image_path_is_an_image_term(tmp_path):
    p = tmp_path / "query.png"
    Image.new("RGB", (4, 4)).save(p)
    assert parse_query([str(p), "-2:" + str(p)]) == [
        QueryTerm("image", str(p), 1.0),
        QueryTerm("image", str(p), -2.0),
    ]


@pytest.mark.parametrize(
    "terms, message",
    [
        ([], "empty"),
        (["   "], "empty"),
        (["+"], "empty"),
        (["2:"], "empty"),
        (["-cat"], "positive weight"),
        (["0:cat", "-dog"], "positive weight"),
        (["/no/such/photo.jpg"], "does not exist"),
        (["holiday.JPEG"], "does not exist"),
    ],
)
def test_meaningless_queries_raise_usage_error(terms, message):
    with pytest.raises(UsageError, match=message):
        parse_query(terms)


def test_words_with_spaces_and_an_extension_stay_text():
    assert parse_term("a photo of file.jpg").kind == "text"


def test_combine_is_the_normalised_weighted_sum_of_unit_vectors():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((3, 8)).astype(np.float32)
    w = np.array([1.0, 2.0, -0.5])
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    want = (w[:, None] * unit).sum(0)
    np.testing.assert_allclose(combine(v * 7.0, w), want / np.linalg.norm(want), atol=1e-6)


def test_terms_that_cancel_raise_usage_error():
    v = np.ones((2, 4), np.float32)
    with pytest.raises(UsageError, match="cancel"):
        combine(v, np.array([1.0, -1.0]))
