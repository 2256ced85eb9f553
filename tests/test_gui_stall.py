"""The GUI thread stays free while a library indexes: it runs no SQL and no model call during the job.

The longest gap between timer ticks is measured and printed too, but not asserted: an absolute time in a
test measures the machine's load (on this shared 2-core machine it ranged 35-266 ms on unchanged code).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import sqlite3  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer  # noqa: E402

from tests.builders.fake_embedder import FakeEmbedder  # noqa: E402
from tests.test_gui import drop, open_window, write_scenes  # noqa: E402

TICK_MS = 5


class _Watch:
    """Which threads ran SQL or the model while `on` (the GUI thread must not)."""

    def __init__(self) -> None:
        self.on = False
        self.gui = threading.get_ident()
        self.sql_on_gui: list[str] = []
        self.model_on_gui = 0
        self.sql_elsewhere = 0

    def saw_sql(self, sql: str) -> None:
        if self.on:
            if threading.get_ident() == self.gui:
                self.sql_on_gui.append(sql.strip().split("\n")[0][:80])
            else:
                self.sql_elsewhere += 1


def _watched_connection(watch: _Watch) -> type[sqlite3.Connection]:
    class Watched(sqlite3.Connection):
        def execute(self, sql, *args):
            watch.saw_sql(sql)
            return super().execute(sql, *args)

        def executemany(self, sql, *args):
            watch.saw_sql(sql)
            return super().executemany(sql, *args)

    return Watched


class _WatchedEmbedder(FakeEmbedder):
    def __init__(self, watch: _Watch, **kw) -> None:
        super().__init__(**kw)
        self._watch = watch

    def embed_pixels(self, pixels):
        if self._watch.on and threading.get_ident() == self._watch.gui:
            self._watch.model_on_gui += 1
        return super().embed_pixels(pixels)


def test_gui_thread_runs_no_sql_and_no_model_while_a_library_indexes(qtbot, tmp_path, monkeypatch):
    watch = _Watch()
    connect = sqlite3.connect
    factory = _watched_connection(watch)
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: connect(*a, factory=factory, **kw))
    write_scenes(tmp_path / "photos", 100, seed=3, size=320)
    win, session = open_window(qtbot, tmp_path, monkeypatch, _WatchedEmbedder(watch, image_size=64))
    qtbot.wait(200)  # let the first paint and the initial (empty) queries settle
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now

    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    timer.start()
    last[0] = time.perf_counter()
    watch.on = True
    drop(win.sidebar, [tmp_path / "photos"])
    qtbot.waitUntil(lambda: win.jobs.running, timeout=10_000)
    qtbot.waitUntil(lambda: not win.jobs.running and len(win.model.items) == 100, timeout=120_000)
    qtbot.wait(300)  # the grid's first thumbnails arrive and are painted too
    watch.on = False
    timer.stop()
    assert session.view_counts().all == 100
    assert len(gaps) > 20
    print(
        f"GUI-thread gaps while indexing 100 images: max {max(gaps):.1f} ms, "
        f"p95 {sorted(gaps)[int(0.95 * len(gaps))]:.1f} ms over {len(gaps)} ticks; "
        f"SQL statements off the GUI thread: {watch.sql_elsewhere}"
    )
    assert watch.sql_elsewhere > 100, "the watch must see the job's own statements (else it watches nothing)"
    assert watch.sql_on_gui == [], f"SQL on the GUI thread while indexing: {watch.sql_on_gui[:5]}"
    assert watch.model_on_gui == 0
    win.close()
    session.close()
