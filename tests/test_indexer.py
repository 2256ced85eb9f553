"""The indexing job: incremental runs, model changes, stopping, and change detection end to end."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from app.core.backends import Embedder
from app.core.contracts import JobProgress
from app.core.indexer import IndexSummary, index
from app.core.store import Store
from tests.builders.fake_embedder import FakeEmbedder
from tests.builders.images import make_library, photo, save_jpeg
from tests.builders.jobs import collect


def run(store: Store, embedder, roots, **kw) -> tuple[IndexSummary, list[JobProgress]]:
    summary, items = collect(index(store, embedder, [Path(r) for r in roots], **kw))
    assert items[-1].phase == "done" and isinstance(summary, IndexSummary)
    assert all(isinstance(p, JobProgress) for p in items)  # the one progress type of every job
    return summary, items


def statuses(store: Store) -> dict[str, str]:
    return {Path(p).name: s for p, s in store.conn.execute("SELECT path, status FROM images")}


@pytest.fixture
def lib(tmp_path) -> Path:
    make_library(tmp_path / "lib", 10)
    return tmp_path / "lib"


def test_fake_embedder_satisfies_the_protocol():
    assert isinstance(FakeEmbedder(), Embedder)


def test_first_run_indexes_everything_with_metadata(lib, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    summary, items = run(store, emb, [lib], batch_size=4, workers=2)
    assert (summary.added, summary.embedded, summary.errors, summary.skipped) == (10, 10, 0, 0)
    assert {p.phase for p in items} == {"scan", "embed", "done"}
    embeds = [p for p in items if p.phase == "embed"]
    assert [p.done for p in embeds] == [0, 4, 8, 10] and all(p.total == 10 for p in embeds)
    assert set(statuses(store).values()) == {"ok"}
    rec = store.image_info([store.image_id_for_path(lib / "img_0000.jpg")])[0]
    assert (rec.width, rec.height, rec.taken_at, rec.camera) == (64, 48, "2020-01-01T10:00:00", "FakeCam")
    ids, q, scales, _ = store.embedding_rows(emb.model_id)
    assert len(ids) == 10 and q.shape == (10, emb.dim)


def test_stored_vectors_equal_the_embedders_output(lib, tmp_path):
    store, emb = Store(":memory:"), FakeEmbedder()
    run(store, emb, [lib])
    p = lib / "album1" / "img_0001.jpg"
    from app.core.decode import open_image

    expected = FakeEmbedder().embed_pixels(emb.preprocess(open_image(p, min_side=64).image)[None])
    got = store.f16_vectors(emb.model_id, [store.image_id_for_path(p)]).astype(np.float32)
    assert np.allclose(got, expected, atol=2e-3)


def test_second_run_is_incremental_and_a_new_model_re_embeds(lib, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    run(store, emb, [lib])
    summary, _ = run(store, emb, [lib])
    assert emb.embedded == 10 and summary.skipped == 10 and summary.embedded == 0
    other = FakeEmbedder(model_id="fake-b", dim=16, seed=1)
    summary, _ = run(store, other, [lib])
    assert other.embedded == 10 and summary.embedded == 10
    assert len(store.embedding_rows("fake-clip")[0]) == 10
    assert store.embedding_rows("fake-b")[1].shape == (10, 16)


def test_should_stop_ends_after_a_committed_batch_and_the_rerun_finishes(lib, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    summary, _ = run(store, emb, [lib], batch_size=3, should_stop=lambda: True)
    assert summary.stopped and summary.embedded == 3 and len(store.embedding_rows(emb.model_id)[0]) == 3
    # A model call may run past a commit boundary (after an early part, when decoding was slow): what it
    # embedded beyond the committed batch is dropped at the stop, less than a batch of work.
    ahead = emb.embedded - 3
    assert 0 <= ahead < 3
    summary, _ = run(store, emb, [lib], batch_size=3)
    assert emb.embedded == 10 + ahead and summary.embedded == 7 and summary.skipped == 3


def test_broken_file_is_recorded_and_the_rest_indexed(lib, tmp_path):
    (lib / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    store = Store(":memory:")
    summary, items = run(store, FakeEmbedder(), [lib], batch_size=4)
    assert summary.errors == 1 and summary.embedded == 10 and items[-1].errors == 1
    row = store.conn.execute("SELECT status, error FROM images WHERE path LIKE '%broken.jpg'").fetchone()
    assert row[0] == "error" and "not a recognised image" in row[1]
    assert [(p.name, r) for p, r, _ in store.errors()] == [("broken.jpg", row[1])]


def _decisions(store: Store, path: Path):
    i = store.image_id_for_path(path)
    with store.transaction() as conn:
        conn.execute("INSERT INTO tags VALUES (?, 'dog', 0.9, 'confirmed', 'm', 0)", (i,))
        conn.execute("INSERT INTO tags VALUES (?, 'cat', 0.4, 'auto', 'm', 0)", (i,))
        conn.execute("INSERT INTO captions VALUES (?, 'llava', 'a dog', 0)", (i,))
    return i


def test_rename_and_move_keep_id_embedding_tags_and_caption(lib, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    other_root = tmp_path / "second"
    other_root.mkdir()
    run(store, emb, [lib, other_root])
    a, b = lib / "img_0000.jpg", lib / "img_0002.jpg"
    ia, ib = _decisions(store, a), _decisions(store, b)
    vec_before = store.f16_vectors(emb.model_id, [ia])
    (lib / "album0").joinpath("renamed.jpg").write_bytes(a.read_bytes())
    a.unlink()
    shutil.move(b, other_root / "moved_to_other_root.jpg")
    summary, _ = run(store, emb, [lib, other_root])
    assert (summary.moved, summary.added, summary.missing, summary.embedded) == (2, 0, 0, 0)
    assert store.image_id_for_path(lib / "album0" / "renamed.jpg") == ia
    assert store.image_id_for_path(other_root / "moved_to_other_root.jpg") == ib
    assert np.array_equal(store.f16_vectors(emb.model_id, [ia]), vec_before)
    count = "SELECT count(*) FROM {} WHERE image_id IN (?, ?)"
    assert store.conn.execute(count.format("tags"), (ia, ib)).fetchone()[0] == 4
    assert store.conn.execute(count.format("captions"), (ia, ib)).fetchone()[0] == 2


def test_deleted_file_is_marked_missing_and_comes_back_with_its_decisions(lib, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    run(store, emb, [lib])
    p = lib / "img_0004.jpg"
    i = _decisions(store, p)
    data, st = p.read_bytes(), p.stat()
    p.unlink()
    summary, _ = run(store, emb, [lib])
    assert summary.missing == 1 and statuses(store)["img_0004.jpg"] == "missing"
    assert i not in store.embedding_rows(emb.model_id)[0]
    last = store.embedding_rows(emb.model_id)[3]
    p.write_bytes(data)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    run(store, emb, [lib])
    assert statuses(store)["img_0004.jpg"] == "ok" and emb.embedded == 10
    assert store.embedding_rows(emb.model_id, after_rowid=last)[0].tolist() == [i]  # seen by a refresh
    assert store.conn.execute("SELECT count(*) FROM tags WHERE image_id = ?", (i,)).fetchone()[0] == 2


def test_touched_file_is_unchanged_and_edited_file_is_re_embedded(lib, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    run(store, emb, [lib])
    touched, edited = lib / "img_0000.jpg", lib / "img_0002.jpg"
    later = time.time() + 100
    os.utime(touched, (later, later))
    i = _decisions(store, edited)
    save_jpeg(edited, photo(64, 48, 999))
    summary, _ = run(store, emb, [lib])
    assert (summary.updated, summary.embedded, emb.embedded) == (1, 1, 11)
    # New content: the machine's guesses go, the user's confirmed tag stays.
    assert store.conn.execute("SELECT label FROM tags WHERE image_id = ?", (i,)).fetchall() == [("dog",)]


def test_offline_root_marks_nothing_missing(lib, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    run(store, emb, [lib])
    hidden = tmp_path / "unplugged"
    lib.rename(hidden)  # the drive is gone
    summary, _ = run(store, emb, [lib])
    assert summary.offline_roots == [lib] and summary.missing == 0
    assert set(statuses(store).values()) == {"ok"} and store.roots()[0][2] == "offline"
    lib.mkdir()  # an unmounted mount point: the folder exists but is empty
    summary, _ = run(store, emb, [lib])
    assert summary.offline_roots == [lib] and set(statuses(store).values()) == {"ok"}
    lib.rmdir()
    hidden.rename(lib)
    summary, _ = run(store, emb, [lib])
    assert summary.offline_roots == [] and store.roots()[0][2] == "online" and summary.skipped == 10
