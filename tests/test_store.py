"""The SQLite store: schema and migrations, transactions, path text, and the reads search relies on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.backends import l2_normalize
from app.core.contracts import Filters
from app.core.store import (
    SCHEMA_VERSION,
    Store,
    StoreError,
    backups_of,
    migrate,
    path_to_text,
    text_to_path,
)
from app.core.vectors import dequantize_int8
from tests.builders.rows import add_image


def test_new_file_is_wal_at_current_schema(tmp_path):
    with Store(tmp_path / "lib.sqlite") as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {"roots", "images", "errors", "embeddings", "tags", "captions"} <= set(s.table_names())


def test_older_database_is_migrated_stepwise_keeping_data(tmp_path):
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute("INSERT INTO roots (path, state) VALUES ('/photos', 'online')")
    conn.execute(
        "INSERT INTO images (root_id, path, size, status, width) VALUES (1, '/photos/a.jpg', 10, 'ok', 640)"
    )
    conn.execute("INSERT INTO errors (path, reason, time) VALUES ('/photos/b.jpg', 'truncated', 1.0)")
    conn.close()
    with Store(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        rec = s.image_info([1])[0]
        assert (rec.path, rec.width, rec.camera) == (Path("/photos/a.jpg"), 640, None)
        assert rec.root == Path("/photos")
        with s.transaction():
            s.put_embeddings("m", [1], l2_normalize(np.ones((1, 8))))
        assert s.embedding_rows("m")[0].tolist() == [1]
        assert s.errors()[0][1] == "truncated"


_ADHOC_THRESHOLDS = """CREATE TABLE IF NOT EXISTS tag_thresholds (model_id TEXT NOT NULL, label TEXT NOT NULL,
    min_score REAL NOT NULL, min_margin REAL NOT NULL, n_examples INTEGER, updated_at REAL,
    PRIMARY KEY (model_id, label))"""  # what tag_store created on save before migration 5


@pytest.mark.parametrize("adhoc", [True, False], ids=["with-adhoc-table", "without"])
def test_a_v3_file_upgrades_keeping_calibrated_thresholds(tmp_path, adhoc):
    from app.core import tag_store

    db = tmp_path / "v3.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=3) == 3
    if adhoc:
        conn.execute(_ADHOC_THRESHOLDS)
        conn.execute("INSERT INTO tag_thresholds VALUES ('m', 'cat', 0.7, 0.1, 12, 1.0)")
    conn.close()
    with Store(db) as s:
        assert s.schema_version == SCHEMA_VERSION >= 5
        assert tag_store.load_thresholds(s, "m") == ({"cat": (0.7, 0.1)} if adhoc else {})
        tag_store.save_thresholds(s, "m", {"dog": (0.65, 0.1, 9)})
        assert tag_store.load_thresholds(s, "m") == {"dog": (0.65, 0.1)}


def test_newer_database_is_refused(tmp_path):
    db = tmp_path / "new.sqlite"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(db)


def test_transaction_rolls_back_on_error_and_nests():
    s = Store(":memory:")
    with pytest.raises(RuntimeError), s.transaction() as conn:
        conn.execute("INSERT INTO roots (path) VALUES ('/a')")
        with s.transaction():
            conn.execute("INSERT INTO roots (path) VALUES ('/b')")
        raise RuntimeError
    assert s.roots() == []
    with s.transaction() as conn:
        with s.transaction():
            conn.execute("INSERT INTO roots (path) VALUES ('/b')")
    assert [p for _, p, _ in s.roots()] == [Path("/b")]


def test_embeddings_round_trip_int8_and_f16_in_rowid_order():
    s = Store(":memory:")
    ids = [add_image(s, f"/lib/{i}.jpg") for i in range(5)]
    vecs = l2_normalize(np.random.default_rng(0).standard_normal((5, 64)))
    with s.transaction():
        s.put_embeddings("m", ids[:3], vecs[:3])
    got, q, scales, last = s.embedding_rows("m")
    assert got.tolist() == ids[:3] and q.dtype == np.int8 and q.shape == (3, 64)
    cos = (l2_normalize(dequantize_int8(q, scales)) * vecs[:3]).sum(1)
    assert cos.min() > 0.999
    with s.transaction():
        s.put_embeddings("m", ids[3:], vecs[3:])
        s.put_embeddings("other", ids, vecs)
    more, _, _, last2 = s.embedding_rows("m", after_rowid=last)
    assert more.tolist() == ids[3:] and last2 > last
    f16 = s.f16_vectors("m", [ids[4], ids[0], 999])
    assert f16.dtype == np.float16 and np.allclose(f16[:2], vecs[[4, 0]], atol=1e-3) and not f16[2].any()


def test_embedding_rows_only_for_ok_images():
    s = Store(":memory:")
    ok = add_image(s, "/lib/a.jpg")
    missing, broken = add_image(s, "/lib/b.jpg", "missing"), add_image(s, "/lib/c.jpg", "error")
    with s.transaction():
        s.put_embeddings("m", [ok, missing, broken], l2_normalize(np.ones((3, 4))))
    assert s.embedding_rows("m")[0].tolist() == [ok]


def test_image_info_keeps_order_and_skips_unknown_ids():
    s = Store(":memory:")
    a = add_image(s, "/lib/a.jpg", width=4, height=3, camera="X")
    b = add_image(s, "/lib/b.jpg")
    recs = s.image_info([b, 12345, a])
    assert [r.id for r in recs] == [b, a] and recs[1].camera == "X" and recs[1].root == Path("/lib")
    assert s.image_id_for_path(Path("/lib/b.jpg")) == b and s.image_id_for_path("/nope.jpg") is None


def test_ids_matching_filters():
    s = Store(":memory:")
    a = add_image(s, "/lib/100%_real/a.jpg", taken_at="2023-05-31T23:00:00", camera="Canon EOS R5")
    b = add_image(s, "/lib/100x_real/b.jpg", taken_at="2023-06-01T08:00:00", camera="iPhone 12")
    c = add_image(s, "/lib/other/c.jpg")
    add_image(s, "/lib/100%_real/gone.jpg", status="missing", camera="Canon")
    with s.transaction() as conn:
        conn.executemany(
            "INSERT INTO tags (image_id, label, score, status) VALUES (?, ?, 0.9, ?)",
            [(a, "dog", "auto"), (b, "dog", "rejected"), (c, "dog", "confirmed"), (b, "cat", "review")],
        )
    assert s.ids_matching(Filters()) is None
    assert s.ids_matching(Filters(folder="/lib/100%_real")).tolist() == [a]  # % and _ are literal
    assert s.ids_matching(Filters(date_from="2023-06-01")).tolist() == [b]
    assert s.ids_matching(Filters(date_to="2023-05")).tolist() == [a]
    assert s.ids_matching(Filters(date_to="2023-05-31")).tolist() == [a]
    assert s.ids_matching(Filters(camera="canon")).tolist() == [a]
    assert s.ids_matching(Filters(tag="dog")).tolist() == [a, c]
    assert s.ids_matching(Filters(tag="cat")).tolist() == []
    assert s.ids_matching(Filters(folder="/lib", tag="dog", camera="eos")).tolist() == [a]


def test_errors_keep_latest_reason_per_path():
    s = Store(":memory:")
    with s.transaction():
        s.record_error("/lib/x.jpg", "truncated", 1.0)
        s.record_error("/lib/x.jpg", "still truncated", 2.0)
        s.record_error("/lib/y.jpg", "empty", 3.0)
    assert [(p.name, r) for p, r, _ in s.errors()] == [("y.jpg", "empty"), ("x.jpg", "still truncated")]


def test_undecodable_path_bytes_are_stored_reversibly():
    s = Store(":memory:")
    weird = Path("/lib/bad_\udcff\udcfe_\ufffd.jpg")
    i = add_image(s, path_to_text(weird))
    assert s.image_id_for_path(weird) == i and s.image_info([i])[0].path == weird


ESCAPED_BYTES = st.characters(
    min_codepoint=0xDC80, max_codepoint=0xDCFF
)  # how Python spells undecodable bytes


@given(st.text(alphabet=st.one_of(ESCAPED_BYTES, st.sampled_from("a/\ufffdF0é"))))
def test_path_text_round_trip_and_is_utf8(s):
    text = path_to_text(s)
    text.encode("utf-8")  # storable
    assert str(text_to_path(text)) == str(Path(s))


def _v1_library(db: Path) -> None:
    """A library at the oldest schema (v1) holding one image."""
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, target=1)
    conn.execute("INSERT INTO roots (path, state) VALUES ('/photos', 'online')")
    conn.execute(
        "INSERT INTO images (root_id, path, size, status, width) VALUES (1, '/photos/a.jpg', 10, 'ok', 640)"
    )
    conn.close()


def test_upgrade_from_the_oldest_schema_copies_the_file_first_and_keeps_two_copies(tmp_path):
    db = tmp_path / "lib.sqlite"
    made = []
    for _ in range(3):
        db.unlink(missing_ok=True)
        _v1_library(db)
        with Store(db) as s:
            assert s.schema_version == SCHEMA_VERSION and s.upgraded_from == 1
            made.append(s.backup)
        with Store(db) as s:
            assert s.backup is None  # nothing to upgrade, no copy
    assert backups_of(db) == made[1:]  # the newest two
    copy = sqlite3.connect(made[-1])
    assert copy.execute("PRAGMA user_version").fetchone()[0] == 1
    assert copy.execute("SELECT path, width FROM images").fetchall() == [("/photos/a.jpg", 640)]
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_failed_upgrade_leaves_the_file_as_it_was_and_the_copy_beside_it(tmp_path):
    db = tmp_path / "lib.sqlite"
    _v1_library(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE tags (x)")  # step 2 creates `tags`: this makes the upgrade fail halfway
    conn.close()
    with pytest.raises(StoreError, match="already exists"):
        Store(db)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # the step rolled back as one transaction
    assert "camera" not in [r[1] for r in conn.execute("PRAGMA table_info(images)")]
    conn.close()
    (copy,) = backups_of(db)
    assert sqlite3.connect(copy).execute("SELECT count(*) FROM images").fetchone()[0] == 1


def test_upgrade_is_refused_when_the_copy_would_not_fit(tmp_path, monkeypatch):
    from app.core import faults

    db = tmp_path / "lib.sqlite"
    _v1_library(db)
    monkeypatch.setattr(faults, "free_bytes", lambda path: 4096)  # an os.statvfs that says the disk is full
    with pytest.raises(faults.DiskFullError, match="the library was not changed") as e:
        Store(db)
    assert str(e.value).startswith(f"the disk holding {faults.volume_of(db)} is full: free about")
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1 and backups_of(db) == []
    assert conn.execute("SELECT path FROM images").fetchall() == [("/photos/a.jpg",)]
    conn.close()


class _LockedAtFirst:
    """A connection whose journal switch meets another process creating the same library: SQLite says
    "database is locked" at once there (measured: 1 in ~40 rounds of 4 processes opening a new library)."""

    def __init__(self, refusals: int, error: str = "database is locked") -> None:
        self.calls, self.refusals, self.error = 0, refusals, error

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= self.refusals:
            raise sqlite3.OperationalError(self.error)


def test_the_journal_switch_waits_for_another_process_creating_the_library():
    from app.core.store import _switch_journal

    conn = _LockedAtFirst(refusals=3)
    _switch_journal(conn, "WAL", poll_s=0.001)
    assert conn.calls == 4
    other = _LockedAtFirst(refusals=1, error="disk I/O error")  # not busy: no retry
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _switch_journal(other, "WAL", poll_s=0.001)
    assert other.calls == 1
