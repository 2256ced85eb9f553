"""`fovea index --watch`: a photo added while watching gets indexed without another command."""

from __future__ import annotations

import threading
import time

from PIL import Image

from app.commands import watch as watch_module
from app.commands.watch import watch
from app.core.api import Library
from app.core.store import Store
from tests.builders.fake_embedder import FakeEmbedder


def _count_ok(store: Store) -> int:
    return store.conn.execute("SELECT count(*) FROM images WHERE status = 'ok'").fetchone()[0]


def test_watch_indexes_a_photo_added_while_watching_and_stops_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(watch_module, "SETTLE_S", 0.2)  # the burst wait is a constant, not what is tested
    lib = tmp_path / "lib"
    lib.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(lib / "a.png")
    stop = threading.Event()
    with Library(tmp_path / "db.sqlite", embedder=FakeEmbedder()) as library, Store(library.db) as store:
        t = threading.Thread(target=watch, args=(library, [lib], stop), daemon=True)
        t.start()
        time.sleep(1.0)  # the observer is up
        Image.new("RGB", (40, 30), (10, 200, 10)).save(lib / "b.png")
        deadline = time.monotonic() + 20
        while _count_ok(store) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        t.join(timeout=10)
        assert _count_ok(store) == 2
        assert not t.is_alive()
        # Our own reads of the photos must not keep re-triggering the indexer.
        n_errors = store.conn.execute("SELECT count(*) FROM errors").fetchone()[0]
        assert n_errors == 0
