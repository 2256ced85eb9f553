"""The main window driven like a user would (pytest-qt, offscreen): drops, typing, tag decisions, errors."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QPushButton  # noqa: E402

from app.core.api import Library  # noqa: E402
from app.core.decode import open_image  # noqa: E402
from app.core.paths import demo_model_dir  # noqa: E402
from app.core.scenes import make_scenes, render  # noqa: E402
from tests.builders.fake_embedder import FakeEmbedder  # noqa: E402

WAIT_MS = 60_000


class MatchingEmbedder(FakeEmbedder):
    """The fake embedder, plus chosen texts whose embedding IS a known image's embedding.

    Stand-in for the demo CLIP model: a query in `targets` must rank that image first (cosine 1)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.targets: dict[str, Path] = {}

    def embed_texts(self, texts):
        out = super().embed_texts(texts)
        for i, t in enumerate(texts):
            if t in self.targets:
                out[i] = self.embed_images([open_image(self.targets[t]).image])[0]
        return out


def write_scenes(folder: Path, n: int, seed: int = 7, size: int = 96) -> list[tuple[Path, object]]:
    """Generated scenes as PNG (lossless: the fake embedder sees exactly the pixels written)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, scene in enumerate(make_scenes(seed, n)):
        p = folder / f"scene-{i:03d}.png"
        render(scene, size).save(p)
        out.append((p, scene))
    return out


def drop(widget, paths: list[Path]) -> None:
    """Drag-enter then drop events carrying file URLs, delivered to `widget` (item views: their viewport)
    through QApplication, as the platform's drag manager would (Qt ignores a drop without an enter)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    target = widget.viewport() if hasattr(widget, "viewport") else widget
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(20, 20), *args)
    assert QApplication.sendEvent(target, enter) and enter.isAccepted()
    QApplication.sendEvent(target, QDropEvent(QPointF(20, 20), *args))


def grid_paths(win) -> list[str]:
    return [it.path for it in win.model.items]


def open_window(qtbot, tmp_path: Path, monkeypatch, embedder):
    from app.gui.main_window import MainWindow

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    session = Library(tmp_path / "library.sqlite", embedder=embedder)
    win = MainWindow(session, tmp_path / "thumbs")
    qtbot.addWidget(win)
    win.show()
    return win, session


def wait_indexed(qtbot, win, n: int) -> None:
    qtbot.waitUntil(lambda: not win.jobs.running and len(win.model.items) == n, timeout=WAIT_MS)


@pytest.fixture
def indexed(qtbot, tmp_path, monkeypatch):
    """A window whose library (24 generated scenes + 1 broken file) was added by dropping its folder."""
    scenes = write_scenes(tmp_path / "photos", 24)
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"this is not a jpeg")
    emb = MatchingEmbedder()
    win, session = open_window(qtbot, tmp_path, monkeypatch, emb)
    drop(win.sidebar, [tmp_path / "photos"])
    wait_indexed(qtbot, win, 24)
    yield win, session, scenes, emb
    win.close()
    session.close()


def test_empty_first_run_invites_a_drop(qtbot, tmp_path, monkeypatch):
    win, session = open_window(qtbot, tmp_path, monkeypatch, FakeEmbedder())
    qtbot.waitUntil(lambda: win.stack.currentWidget() is win.empty, timeout=5000)
    assert "Drop a folder" in win.empty.title.text()
    assert win.empty.demo_btn.isVisibleTo(win)
    win.close()  # the window's readers end before their library closes
    session.close()


def test_first_run_download_starts_a_pull_job_reporting_job_progress(qtbot, tmp_path, monkeypatch):
    """The welcome dialog's Download button runs the pull as a JobKind.PULL job (it passed its label as
    the kind before, which failed on start); the puller's steps reach the status bar as JobProgress."""
    from app.core import model_pull
    from app.core.contracts import JobKind
    from app.core.model_pull import PullProgress
    from app.gui import first_run

    def fake_pull(name, **_kw):
        yield PullProgress("download", f"Downloading {name}… 1 of 4 MB", 1, 4)
        yield PullProgress("done", f"installed {name}")

    monkeypatch.setattr(model_pull, "pull", fake_pull)
    win, session = open_window(qtbot, tmp_path, monkeypatch, FakeEmbedder())
    seen, used = [], []
    monkeypatch.setattr(win, "use_model", used.append)  # a real pull then switches to the new model
    win.jobs.progressed.connect(lambda kind, p: seen.append((kind, p)))
    dlg = first_run.FirstRunDialog(win)
    dlg._pull()
    qtbot.waitUntil(lambda: used == [first_run.FIRST_MODEL], timeout=WAIT_MS)
    assert [(k, p.phase, p.done, p.total) for k, p in seen] == [
        (JobKind.PULL, "download", 1, 4),
        (JobKind.PULL, "done", 0, 0),
    ]
    assert seen[0][1].message == f"Downloading {first_run.FIRST_MODEL}… 1 of 4 MB"
    win.close()
    session.close()


def test_dropped_folder_indexes_and_typed_query_shows_expected_images_first(qtbot, tmp_path, monkeypatch):
    _typed_query(qtbot, tmp_path, monkeypatch)


def _typed_query(qtbot, tmp_path, monkeypatch) -> tuple[list[Path], set[Path]]:
    """With the demo CLIP model (when present) "a red circle" must put a red-circle scene first and all of them
    near the top; without it, a fake embedder maps the query text onto one known red-circle image, which must
    then come first."""
    scenes = write_scenes(tmp_path / "photos", 40, seed=11)
    red = [p for p, s in scenes if s.contains("red", "circle")]
    assert red, "the seed must produce at least one red circle"
    query = "a red circle"
    if (demo_model_dir() / "config.json").is_file():
        import mlx_models  # noqa: F401  (OpenBLAS before mlx)

        from app.core.backends import open_embedder

        emb = open_embedder(demo_model_dir(), "mlx")
    else:
        emb = MatchingEmbedder()
        emb.targets[query] = red[0]
    win, session = open_window(qtbot, tmp_path, monkeypatch, emb)
    drop(win, [tmp_path / "photos"])  # dropped on the window itself
    wait_indexed(qtbot, win, 40)
    assert session.libraries()[0].count == 40

    qtbot.keyClicks(win.search, query)  # typed, so the debounced live search runs
    qtbot.waitUntil(lambda: win.jobs.label.text().endswith(f"“{query}”"), timeout=WAIT_MS)
    shown = [Path(p) for p in grid_paths(win)]
    red = {p.resolve() for p in red}
    assert shown[0] in red, (shown[:5], red)  # the best hit is a red circle
    if isinstance(emb, MatchingEmbedder):
        assert shown[0] == emb.targets[query].resolve()
        assert not win.banner.isVisible()  # a cosine-1 hit is a strong match
    return shown, red


def test_typed_query_puts_every_red_circle_near_the_top(qtbot, tmp_path, monkeypatch):
    shown, red = _typed_query(qtbot, tmp_path, monkeypatch)
    assert red <= set(shown[: len(red) + 4]), (
        shown[: len(red) + 4],
        red,
    )  # all of them in the first len + 4 of 40


def test_image_dropped_on_search_field_or_grid_runs_similar_search(qtbot, indexed, tmp_path):
    win, _session, scenes, _ = indexed
    outside = tmp_path / "elsewhere" / "query.png"
    outside.parent.mkdir()
    shutil.copy(scenes[5][0], outside)  # same pixels, not in the library

    drop(win.search, [outside])
    qtbot.waitUntil(lambda: win.jobs.label.text().endswith("like query.png"), timeout=WAIT_MS)
    assert grid_paths(win)[0] == str(scenes[5][0].resolve())
    assert win.search.text() == str(outside)

    drop(win.grid, [scenes[9][0]])  # a library photo: itself left out, results ranked by similarity
    qtbot.waitUntil(lambda: win.jobs.label.text().endswith(f"like {scenes[9][0].name}"), timeout=WAIT_MS)
    scores = [it.score for it in win.model.items]
    assert str(scenes[9][0].resolve()) not in grid_paths(win)
    assert scores == sorted(scores, reverse=True)


def test_other_drops_are_explained(qtbot, indexed, tmp_path):
    win, session, _, _ = indexed
    note = tmp_path / "notes.txt"
    note.write_text("hello")
    drop(win.grid, [note])
    assert win.banner.isVisible() and "notes.txt" in win.banner.text()
    assert len(session.libraries()) == 1


def _chip_button(win, status: str, label: str) -> QPushButton:
    return win.detail.findChild(QPushButton, f"tag-{status}-{label}")


def test_confirm_and_reject_a_tag_change_the_store_and_the_review_queue(qtbot, indexed):
    from app.core.tag_store import list_tags, replace_machine_tags

    win, session, _, emb = indexed
    ids = [it.image_id for it in win.model.items[:2]]
    replace_machine_tags(
        session.store,
        ids,
        [(ids[0], "circle", 0.55, "review"), (ids[1], "star", 0.52, "review")],
        emb.model_id,
    )
    win.sidebar.select_view("review")
    qtbot.waitUntil(lambda: sorted(it.image_id for it in win.model.items) == sorted(ids), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.sidebar._view_items["review"].text(0).endswith("2"), timeout=WAIT_MS)

    win.grid.setCurrentIndex(
        win.model.index(next(r for r, it in enumerate(win.model.items) if it.image_id == ids[0]))
    )
    qtbot.waitUntil(lambda: _chip_button(win, "confirmed", "circle") is not None, timeout=5000)
    qtbot.mouseClick(_chip_button(win, "confirmed", "circle"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: [it.image_id for it in win.model.items] == [ids[1]], timeout=WAIT_MS)
    assert [(t.label, t.status) for t in list_tags(session.store) if t.image_id == ids[0]] == [
        ("circle", "confirmed")
    ]

    win.grid.setCurrentIndex(win.model.index(0))
    qtbot.waitUntil(lambda: _chip_button(win, "rejected", "star") is not None, timeout=5000)
    qtbot.mouseClick(_chip_button(win, "rejected", "star"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.stack.currentWidget() is win.empty, timeout=WAIT_MS)
    assert [(t.label, t.status) for t in list_tags(session.store) if t.image_id == ids[1]] == [
        ("star", "rejected")
    ]
    qtbot.waitUntil(lambda: win.sidebar._view_items["review"].text(0) == "Review queue", timeout=WAIT_MS)
    assert "Nothing to review" in win.empty.title.text()


def test_unreadable_file_appears_under_errors(qtbot, indexed, tmp_path):
    win, session, _, _ = indexed
    qtbot.waitUntil(lambda: "1 error" in win.sidebar.libraries.child(0).text(0), timeout=WAIT_MS)
    win.sidebar.select_view("errors")
    qtbot.waitUntil(lambda: win.stack.currentWidget() is win.errors_page, timeout=WAIT_MS)
    assert win.errors_page.paths() == [str((tmp_path / "photos" / "broken.jpg").resolve())]
    assert win.errors_page.item(0, 1).text()  # a reason is shown
    assert (tmp_path / "photos" / "broken.jpg").read_bytes() == b"this is not a jpeg"  # never modified


def test_removing_a_library_keeps_the_photos(qtbot, indexed, tmp_path):
    win, session, scenes, _ = indexed
    before = sorted(p.name for p in (tmp_path / "photos").iterdir())
    session.remove_root(tmp_path / "photos")
    assert session.libraries() == [] and session.browse("all") == []
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == before


def test_stale_search_results_are_dropped(qtbot, indexed):
    win, _session, scenes, emb = indexed
    emb.targets["first"], emb.targets["second"] = scenes[1][0], scenes[2][0]
    win.search.setText("first")
    win.run_search()
    win.search.setText("second")
    win.run_search()  # queued behind the first on the single read worker
    qtbot.waitUntil(lambda: win.jobs.label.text().endswith("“second”"), timeout=WAIT_MS)
    qtbot.wait(100)
    assert grid_paths(win)[0] == str(scenes[2][0].resolve())


def test_thumbnails_are_decoded_at_the_device_pixel_ratio(qtbot, tmp_path):
    from app.gui.thumbnails import ThumbnailLoader

    src = write_scenes(tmp_path / "p", 1, size=400)[0][0]
    loader = ThumbnailLoader(tmp_path / "cache", size=100, dpr=2.0)
    assert loader.pixmap(1, str(src)) is None  # queued, decoded in a worker
    qtbot.waitUntil(lambda: loader.cached(1) is not None, timeout=WAIT_MS)
    pm = loader.cached(1)
    assert pm.devicePixelRatio() == 2.0 and max(pm.width(), pm.height()) == 200
    assert np.isclose(pm.deviceIndependentSize().width(), 100)


def test_pyside_signals_do_not_leak_references(qtbot):
    """PySide6 6.12.0 on Python 3.11 drops a reference to True on every Python `emit` and to None on every
    Python slot call, so the app aborts (bool_dealloc / none_dealloc) after a few thousand signals.
    Pin PySide6-Essentials != 6.12.0 (6.11.3 is fine)."""
    import sys

    from PySide6.QtCore import QObject, Signal

    class Src(QObject):
        sig = Signal(object)

    src, obj = Src(), QObject()
    src.sig.connect(lambda _v: None)
    obj.objectNameChanged.connect(lambda _n: None)
    if sys.version_info >= (3, 12):
        pytest.skip("True and None are immortal on Python >= 3.12: the leak cannot be seen or crash")
    before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(50):
        src.sig.emit(i)
        obj.setObjectName(f"n{i}")
    assert abs(sys.getrefcount(True) - before[0]) < 10 and abs(sys.getrefcount(None) - before[1]) < 10


def test_quitting_during_a_job_asks_then_stops_after_the_batch_and_closes(qtbot, tmp_path, monkeypatch):
    """The window never closes mid-batch: 'No' keeps it open with the job running; 'Yes' cancels the job,
    which ends at a batch boundary with its batches committed, and then the window closes."""
    import threading

    from app.core.contracts import JobKind, JobProgress
    from app.gui import quit_guard

    win, session = open_window(qtbot, tmp_path, monkeypatch, FakeEmbedder())
    committed, gate = [], threading.Event()

    def job(should_stop):
        for k in range(1000):
            gate.wait(0.02)
            committed.append(k)  # stands for one committed batch
            yield JobProgress(k, 1000, f"Indexing… {k} of 1000")
            if should_stop():
                return k

    answers = []
    monkeypatch.setattr(quit_guard, "ask_stop", lambda parent, name: answers.pop(0))
    assert win.jobs.start(job, JobKind.INDEX, "Indexing")
    qtbot.waitUntil(lambda: len(committed) >= 2, timeout=WAIT_MS)
    answers.append(False)
    win.close()
    assert win.isVisible() and win.jobs.running  # "keep running"
    answers.append(True)
    win.close()
    assert win.isVisible() and "after the current batch" in win.jobs.label.text()
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=WAIT_MS)
    assert not win.jobs.running and len(committed) < 1000 and answers == []
    session.close()
