"""Preferences' cluster address reaches the index job: set, the job embeds on Ray; empty, on this machine."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.core.cluster import RayEngine  # noqa: E402 - imports no ray: the engine connects on first use
from app.core.settings import Settings  # noqa: E402
from tests.builders.fake_embedder import FakeEmbedder  # noqa: E402
from tests.test_gui import WAIT_MS, open_window  # noqa: E402


def test_preferences_cluster_address_reaches_the_index_job(qtbot, tmp_path, monkeypatch):
    from app.gui.preferences import PreferencesDialog

    win, session = open_window(qtbot, tmp_path, monkeypatch, FakeEmbedder())
    engines = []

    def index_job(roots=None, should_stop=None, batch_size=32, download_icloud=False, engine=None):
        engines.append(engine)
        return None
        yield  # a generator, as the real job

    monkeypatch.setattr(session, "index_job", index_job)
    try:
        for address in ("ray://head.example:10001", ""):
            dlg = PreferencesDialog(win)
            dlg.cluster.setText(f"  {address}  ")
            dlg._save()  # what OK does
            assert Settings.load().cluster_address == address
            qtbot.waitUntil(lambda: not win.jobs.running, timeout=WAIT_MS)  # the window's own start-up jobs
            before = len(engines)
            win.reindex_all()
            qtbot.waitUntil(lambda n=before: len(engines) > n and not win.jobs.running, timeout=WAIT_MS)
        on_ray, local = engines
        assert isinstance(on_ray, RayEngine) and on_ray.options.address == "ray://head.example:10001"
        assert on_ray.ray is None  # nothing connected on the GUI thread: the job connects in its worker
        assert local is None
    finally:
        win.close()
        session.close()
