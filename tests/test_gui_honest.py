"""The window's honest-result banners (pytest-qt, offscreen): the demo model on photos, unknown query words."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import json  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.core.demo import DEMO_MODEL_WARNING  # noqa: E402
from app.core.paths import demo_model_dir  # noqa: E402
from tests.test_gui import WAIT_MS, drop, open_window, wait_indexed, write_scenes  # noqa: E402

pytestmark = pytest.mark.skipif(not demo_model_dir().is_dir(), reason="the bundled demo model is missing")


@pytest.fixture(scope="module")
def demo_embedder():
    import mlx_models  # noqa: F401  (OpenBLAS before mlx)

    from app.core.backends import open_embedder

    return open_embedder(demo_model_dir(), "mlx")


@pytest.mark.parametrize("demo_scenes", [False, True])
def test_demo_model_banner_shows_on_photos_only_and_offers_a_real_model(
    qtbot, tmp_path, monkeypatch, demo_embedder, demo_scenes
):
    write_scenes(tmp_path / "photos", 6)
    if demo_scenes:  # the generator's manifest marks a demo library
        (tmp_path / "photos" / "captions.json").write_text(json.dumps({}))
    opened = []
    monkeypatch.setattr("app.gui.main_window.open_preferences", lambda win: opened.append(win))
    win, session = open_window(qtbot, tmp_path, monkeypatch, demo_embedder)
    drop(win.sidebar, [tmp_path / "photos"])
    wait_indexed(qtbot, win, 6)
    qtbot.waitUntil(lambda: bool(win._libs), timeout=WAIT_MS)
    if demo_scenes:
        assert not win.demo_banner.isVisible()
    else:
        qtbot.waitUntil(win.demo_banner.isVisible, timeout=WAIT_MS)
        assert DEMO_MODEL_WARNING in win.demo_banner.text() and "Get a real model" in win.demo_banner.text()
        win.demo_banner.linkActivated.emit("models")
        assert opened == [win]
    win.close()
    session.close()


def test_a_query_with_words_the_model_does_not_know_says_which(qtbot, tmp_path, monkeypatch, demo_embedder):
    write_scenes(tmp_path / "photos", 6)
    win, session = open_window(qtbot, tmp_path, monkeypatch, demo_embedder)
    drop(win.sidebar, [tmp_path / "photos"])
    wait_indexed(qtbot, win, 6)
    qtbot.keyClicks(win.search, "a dog")
    qtbot.waitUntil(lambda: win.jobs.label.text().endswith("“a dog”"), timeout=WAIT_MS)
    assert win.banner.isVisible() and "the model does not know: dog" in win.banner.text()
    assert all(it.weak for it in win.model.items)
    win.close()
    session.close()


def test_the_tag_review_marks_labels_the_model_cannot_read(qtbot, tmp_path, monkeypatch, demo_embedder):
    from PySide6.QtWidgets import QLabel

    from app.core.api import Library
    from app.core.contracts import TagSettings
    from app.gui.detail_panel import DetailPanel

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    write_scenes(tmp_path / "photos", 8)
    labels = tmp_path / "labels.txt"
    labels.write_text("red circle\nblue square\ndog\n")
    with Library(tmp_path / "lib.sqlite", embedder=demo_embedder) as lib:
        lib.add_root(tmp_path / "photos")
        for _ in lib.index_job():
            pass
        for _ in lib.tag_job(TagSettings(), labels):
            pass
        dog = [r for r in lib.list_tags(label="dog")]
        assert dog and all(r.status == "review" for r in dog)  # scored, never applied
        details = lib.image_details(lib.store.image_id_for_path(dog[0].path))
    tags = {t.label: t for t in details.tags}
    assert tags["dog"].weak_reason == "the model does not know: dog"
    assert all(t.weak_reason is None for lb, t in tags.items() if lb != "dog")
    panel = DetailPanel()
    qtbot.addWidget(panel)
    panel.set_tags(details.tags)
    chip = panel.findChild(QLabel, "tag-dog")
    assert "weak" in chip.text() and chip.toolTip() == "Weak: the model does not know: dog"
