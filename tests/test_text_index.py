"""The FTS5 text index: kept in sync with captions, tags and file names; safe against FTS syntax; bm25 order."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import text_index
from app.core.store import Store
from tests.builders.rows import add_image


def add_caption(store: Store, image_id: int, text: str, model_id: str = "cap", at: float = 1.0) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO captions (image_id, model_id, text, created_at) VALUES (?, ?, ?, ?)",
            (image_id, model_id, text, at),
        )


def add_tag(store: Store, image_id: int, label: str, status: str = "auto") -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO tags (image_id, label, score, status) VALUES (?, ?, 0.5, ?)",
            (image_id, label, status),
        )


def ids(store: Store, *positive: str, negative: tuple[str, ...] = (), **kw) -> list[int]:
    text_index.refresh(store)
    return [m.image_id for m in text_index.search(store, list(positive), list(negative), **kw)]


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


def test_rows_follow_captions_tags_and_file_names(store):
    a = add_image(store, "/lib/holiday/IMG_2041_beach-day.jpg")
    b = add_image(store, "/lib/b.jpg")
    add_caption(store, b, "A red bicycle leaning on a wall")
    add_tag(store, b, "golden retriever")
    assert ids(store, "beach") == [a]  # file name words, split at _ and -
    assert ids(store, "jpg") == []  # the extension is not indexed
    assert ids(store, "holiday") == []  # nor the folders
    assert ids(store, "bicycle") == [b]
    assert ids(store, "retriever") == [b]

    with store.transaction() as conn:  # caption replaced, tag rejected, file renamed: all seen after refresh
        conn.execute("UPDATE captions SET text = 'a blue boat' WHERE image_id = ?", (b,))
        conn.execute("UPDATE tags SET status = 'rejected' WHERE image_id = ?", (b,))
        conn.execute("UPDATE images SET path = '/lib/holiday/mountain.jpg' WHERE id = ?", (a,))
    assert ids(store, "bicycle") == [] and ids(store, "boat") == [b]
    assert ids(store, "retriever") == []
    assert ids(store, "beach") == [] and ids(store, "mountain") == [a]

    with store.transaction() as conn:
        conn.execute("DELETE FROM captions WHERE image_id = ?", (b,))
        conn.execute("DELETE FROM images WHERE id = ?", (a,))
    assert ids(store, "boat") == [] and ids(store, "mountain") == []
    assert store.conn.execute("SELECT count(*) FROM text_fts").fetchone()[0] == 1  # b's name row only


def test_only_ok_images_are_found_and_allowed_restricts(store):
    a, b, c = (add_image(store, f"/lib/{n}.jpg") for n in "abc")
    for i in (a, b, c):
        add_caption(store, i, "a dog in the snow")
    with store.transaction() as conn:
        conn.execute("UPDATE images SET status = 'missing' WHERE id = ?", (c,))
    assert sorted(ids(store, "dog")) == [a, b]
    assert ids(store, "dog", allowed=np.array([b, c])) == [b]
    assert len(ids(store, "dog", limit=1)) == 1


def test_bm25_ranks_more_and_rarer_matching_words_first(store):
    plain = add_image(store, "/lib/1.jpg")
    both = add_image(store, "/lib/2.jpg")
    other = add_image(store, "/lib/3.jpg")
    add_caption(store, plain, "a cat on a sofa next to a lamp and a window")
    add_caption(store, both, "a red bicycle and a cat")
    add_caption(store, other, "a red car")
    found = ids(store, "red bicycle cat")
    assert found[0] == both and sorted(found) == sorted([plain, both, other])
    matches = text_index.search(store, ["red bicycle cat"])
    assert [m.rank for m in matches] == [1, 2, 3]
    assert [m.bm25 for m in matches] == sorted(m.bm25 for m in matches)  # bm25: lower is better


def test_stemming_and_diacritics(store):
    a = add_image(store, "/lib/a.jpg")
    add_caption(store, a, "Two dogs running at the Café")
    assert ids(store, "dog") == [a]
    assert ids(store, "run") == [a]
    assert ids(store, "cafe") == [a]


def test_negative_terms_exclude_and_stopwords_alone_match_nothing(store):
    a, b = add_image(store, "/lib/a.jpg"), add_image(store, "/lib/b.jpg")
    add_caption(store, a, "a dog on the beach")
    add_caption(store, b, "a dog in a car")
    assert ids(store, "dog", negative=("car",)) == [a]
    assert ids(store, "a photo of the") == []
    assert text_index.match_expression(["a photo of the"]) is None


@pytest.mark.parametrize(
    "text",
    [
        '"dog',
        "dog OR cat",
        "NEAR(dog cat)",
        "caption:dog",
        "dog*",
        "-dog",
        "^dog",
        "dog AND",
        "(",
        "{name}: x",
        "'",
    ],
)
def test_fts_syntax_in_user_text_is_taken_literally(store, text):
    a = add_image(store, "/lib/a.jpg")
    add_caption(store, a, "dog")
    found = ids(store, text)  # must not raise
    words = text_index.query_words(text)
    assert found == ([a] if "dog" in words else [])


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_user_text_gives_a_valid_query(text):
    with Store(":memory:") as s:
        add_caption(s, add_image(s, "/lib/a.jpg"), "a dog")
        try:
            text_index.search(s, [text], [text[::-1]])
        except sqlite3.OperationalError as e:  # pragma: no cover - the failure we guard against
            pytest.fail(f"{text!r} broke the FTS query: {e}")


def test_captions_for_returns_the_newest_non_empty_caption(store):
    a, b = add_image(store, "/lib/a.jpg"), add_image(store, "/lib/b.jpg")
    add_caption(store, a, "old words", "m1", at=1.0)
    add_caption(store, a, "new words", "m2", at=2.0)
    add_caption(store, b, "", "m1")
    assert text_index.captions_for(store, [a, b]) == {a: "new words"}
    assert text_index.has_captions(store)


def test_existing_images_are_indexed_by_the_migration_and_rebuild_repairs(tmp_path):
    from app.core.store import migrate

    db = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, target=2)
    conn.execute("INSERT INTO images (path, status) VALUES ('/lib/sunset_beach.jpg', 'ok')")
    conn.close()
    with Store(db) as s:
        assert ids(s, "sunset") == [1]
        with s.transaction() as c:  # a row changed behind the triggers' back
            c.execute("DELETE FROM text_fts")
        assert ids(s, "sunset") == []
        assert text_index.rebuild(s) == 1 and ids(s, "sunset") == [1]


def test_marking_survives_upserts_and_replaces_in_the_outer_statement(store):
    """The triggers' insert must not inherit an outer ON CONFLICT / OR REPLACE policy (SQLite passes it down)."""
    a = add_image(store, "/lib/a.jpg")
    upsert = """INSERT INTO tags (image_id, label, score, status) VALUES (?, 'kite', NULL, ?)
                ON CONFLICT (image_id, label) DO UPDATE SET status = excluded.status"""
    with store.transaction() as conn:
        conn.execute(upsert, (a, "confirmed"))
        conn.execute(upsert, (a, "confirmed"))  # the image is already marked dirty here
        conn.execute("INSERT OR REPLACE INTO captions VALUES (?, 'm', 'a kite', 1.0)", (a,))
        conn.execute("INSERT OR REPLACE INTO captions VALUES (?, 'm', 'a kite over a field', 2.0)", (a,))
    assert ids(store, "kite") == [a] and ids(store, "field") == [a]


def test_a_file_name_that_is_not_utf8_is_indexed_by_its_readable_words(store):
    """Undecodable bytes (PEP 383 surrogates) cannot go into FTS5: they become U+FFFD, the rest is searchable."""
    from app.core.store import path_to_text

    name = "/lib/beach\udce9t\udce9 sunset.jpg"  # 'beachété sunset' written in Latin-1
    i = add_image(store, path_to_text(name))
    assert ids(store, "sunset") == [i]
