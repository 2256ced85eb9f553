"""The engine starts from the index persisted beside the library, and rebuilds it when it is stale,
missing or damaged (never answering from a file that does not match the store)."""

from __future__ import annotations

import numpy as np

from app.core.index_file import index_path
from app.core.search import SearchEngine
from app.core.store import Store
from app.core.vector_index import IndexConfig
from tests.test_search import D, FakeEmbedder, add_images, unit

CFG = IndexConfig(exhaustive_below=200, prefix_dims=8, first_pass=32)


class CountingStore(Store):
    """A store that records from which rowid each engine refresh read the embeddings."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.reads: list[int] = []

    def embedding_rows(self, model_id, after_rowid=0):
        self.reads.append(after_rowid)
        return super().embedding_rows(model_id, after_rowid)


def _engine(db) -> tuple[SearchEngine, CountingStore]:
    store = CountingStore(db)
    return SearchEngine(store, FakeEmbedder(), config=CFG), store


def _library(tmp_path, n: int, seed: int):
    """A store of n images with random unit vectors: (db path, vectors, ids, rng)."""
    db = tmp_path / "lib.sqlite"
    rng = np.random.default_rng(seed)
    vecs = unit(rng.standard_normal((n, D)))
    with Store(db) as s:
        ids = add_images(s, vecs)
    return db, vecs, ids, rng


def _top(engine: SearchEngine, q: np.ndarray, k: int = 10) -> list[int]:
    return [h.image_id for h in engine.search_vector(q, k).hits]


def _truth(vectors: np.ndarray, ids: list[int], q: np.ndarray, k: int = 10) -> list[int]:
    return [ids[i] for i in np.argsort(-(vectors @ q))[:k]]


def test_a_new_process_starts_from_the_file_and_reads_only_newer_rows(tmp_path):
    db, vecs, ids, rng = _library(tmp_path, 1500, 0)
    q = unit(rng.standard_normal(D))
    first, store = _engine(db)
    assert _top(first, q) == _truth(vecs, ids, q)
    assert index_path(db, FakeEmbedder().model_id).is_file() and store.reads == [0]
    store.close()

    second, store = _engine(db)  # as a new process would
    assert _top(second, q) == _truth(vecs, ids, q)
    assert store.reads[0] > 0  # started from the file: no full read of the store
    more = unit(rng.standard_normal((5, D)))
    more[0] = q  # an exact match arrives after the file was written
    new_ids = add_images(store, more)
    assert _top(second, q, 1) == [new_ids[0]]
    store.close()
    third, store = _engine(db)
    assert _top(third, q, 1) == [new_ids[0]]  # file + the rows newer than it
    store.close()


def test_a_stale_file_is_rebuilt_not_trusted(tmp_path):
    db, vecs, ids, rng = _library(tmp_path, 800, 1)
    q = vecs[3]
    engine, store = _engine(db)
    assert _top(engine, q, 1) == [ids[3]]
    store.close()
    with Store(db) as s:  # the best hit goes missing: a change the file cannot replay by rowid
        before = s.vectors_generation()
        with s.transaction() as conn:
            conn.execute("UPDATE images SET status = 'missing' WHERE id = ?", (ids[3],))
        assert s.vectors_generation() == before + 1
    engine, store = _engine(db)
    hits = _top(engine, q, 5)
    assert store.reads == [0] and ids[3] not in hits  # rebuilt from the store
    store.close()
    engine, store = _engine(db)  # and the rebuilt file is current again
    assert _top(engine, q, 5) == hits and store.reads[0] > 0
    store.close()


def test_a_damaged_or_deleted_file_is_rebuilt(tmp_path):
    db, vecs, ids, rng = _library(tmp_path, 600, 2)
    q = unit(rng.standard_normal(D))
    engine, store = _engine(db)
    want = _top(engine, q)
    store.close()
    path = index_path(db, FakeEmbedder().model_id)
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF  # a flipped byte inside the vectors
    path.write_bytes(bytes(data))
    engine, store = _engine(db)
    assert _top(engine, q) == want == _truth(vecs, ids, q) and store.reads == [0]
    store.close()
    path.unlink()
    engine, store = _engine(db)
    assert _top(engine, q) == want and store.reads == [0] and path.is_file()
    store.close()


def test_appends_do_not_bump_the_generation_but_deletions_do(tmp_path):
    with Store(tmp_path / "lib.sqlite") as s:
        g0 = s.vectors_generation()
        ids = add_images(s, unit(np.ones((3, D))))
        assert s.vectors_generation() == g0
        with s.transaction() as conn:
            conn.execute("UPDATE images SET status = 'ok' WHERE id = ?", (ids[0],))  # no change of state
        assert s.vectors_generation() == g0
        with s.transaction() as conn:
            conn.execute("DELETE FROM embeddings WHERE image_id = ?", (ids[1],))
        assert s.vectors_generation() == g0 + 1
        with s.transaction() as conn:
            conn.execute("DELETE FROM images WHERE id = ?", (ids[2],))
        assert s.vectors_generation() == g0 + 2


def test_a_file_from_a_later_state_of_the_store_is_not_trusted(tmp_path):
    db, vecs, ids, rng = _library(tmp_path, 300, 3)
    backup = tmp_path / "backup.sqlite"
    with Store(db) as s:
        s.conn.execute("VACUUM INTO ?", (str(backup),))
        add_images(s, unit(rng.standard_normal((50, D))))
    q = unit(rng.standard_normal(D))
    engine, store = _engine(db)
    _top(engine, q)  # writes the file for 350 images
    store.close()
    backup.replace(db)  # the user puts the older copy back; the file stays
    for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        extra.unlink(missing_ok=True)
    engine, store = _engine(db)
    assert _top(engine, q) == _truth(vecs, ids, q) and store.reads == [0]
    store.close()


def test_fresh_stores_start_from_different_generations(tmp_path):
    with Store(tmp_path / "a.sqlite") as a, Store(tmp_path / "b.sqlite") as b:
        assert a.vectors_generation() != b.vectors_generation()
