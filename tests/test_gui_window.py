"""The window with real photos (pytest-qt, offscreen): the grid's cells and painting, keyboard, zoom, the
status bar and sidebar after every view change, strong/weak search sections, errors shown in the window,
the unopenable-library dialog, duplicates and the Trash flow, tags and the review queue."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import hashlib  # noqa: E402
import sqlite3  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("skimage")

from PySide6.QtCore import QRect, QSize, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPixmap, QStandardItem, QStandardItemModel  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox, QStyle, QStyleOptionViewItem  # noqa: E402

from app.core.api import Library  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.gui.grid_model import StateRole  # noqa: E402
from tests.builders.real_photos import write_real_photos  # noqa: E402
from tests.test_gui import WAIT_MS, MatchingEmbedder, drop, open_window  # noqa: E402


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


@pytest.fixture
def real(qtbot, tmp_path, monkeypatch):
    """A window over a library of real photographs (with copies, a panorama, a tiny GIF, a broken file)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the Trash and settings stay inside the test
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))
    (tmp_path / "home" / ".local" / "share").mkdir(parents=True)
    named = write_real_photos(tmp_path / "photos")
    emb = MatchingEmbedder()
    win, session = open_window(qtbot, tmp_path, monkeypatch, emb)
    drop(win.sidebar, [tmp_path / "photos"])
    n = len([p for p in (tmp_path / "photos").iterdir() if p != named["not_image"]])
    qtbot.waitUntil(lambda: not win.jobs.running and len(win.model.items) == n, timeout=WAIT_MS)
    yield win, session, named, emb
    win.close()
    session.close()


# ---- the grid ------------------------------------------------------------------------------------
def _paint(grid, pm: QPixmap | None, state=QStyle.StateFlag.State_None, size: int = 120) -> QImage:
    """One cell painted by the grid's delegate into an image (white background)."""
    model = QStandardItemModel()
    item = QStandardItem("IMG_0001.jpg")
    item.setData(pm, Qt.ItemDataRole.DecorationRole)
    item.setData("ready" if pm is not None else "loading", StateRole)
    model.appendRow(item)
    opt = QStyleOptionViewItem()
    opt.rect = QRect(0, 0, size, size)
    opt.state = state
    opt.palette = grid.palette()
    img = QImage(size, size, QImage.Format.Format_RGB32)
    img.fill(QColor("white"))
    p = QPainter(img)
    grid.delegate.paint(p, opt, model.index(0, 0))
    p.end()
    return img


def _grid(qtbot):
    from app.gui.grid import ResultsGrid

    grid = ResultsGrid(None, cell=120)
    qtbot.addWidget(grid)
    grid.setGridSize(QSize(120, 120))
    return grid


def _striped(w: int, h: int) -> QPixmap:
    """Left third red, middle green, right third blue."""
    img = QImage(w, h, QImage.Format.Format_RGB32)
    for x, c in ((0, "red"), (w // 3, "lime"), (2 * w // 3, "blue")):
        p = QPainter(img)
        p.fillRect(x, 0, w - x, h, QColor(c))
        p.end()
    return QPixmap.fromImage(img)


def _rgb(img: QImage, x: int, y: int) -> tuple[int, int, int]:
    c = img.pixelColor(x, y)
    return c.red(), c.green(), c.blue()


def test_wide_photos_fill_the_square_cell_by_a_centre_crop_or_fit_whole_on_a_mat(qtbot):
    from app.gui.grid import MARGIN

    grid = _grid(qtbot)
    wide = _striped(600, 100)  # 6:1, like a panorama
    filled = _paint(grid, wide)
    # Fill: only the green middle third is shown, edge to edge and top to bottom.
    for x, y in ((MARGIN + 3, 60), (120 - MARGIN - 4, 60), (60, MARGIN + 3), (60, 120 - MARGIN - 4)):
        assert _rgb(filled, x, y) == (0, 255, 0), (x, y)
    grid.set_fill(False)
    fitted = _paint(grid, wide)
    assert _rgb(fitted, MARGIN + 3, 60)[0] > 200  # the red left end is visible: the whole photo
    assert _rgb(fitted, 60, MARGIN + 3) != (0, 255, 0)  # above the strip: the mat, not the photo


def test_tiny_images_are_shown_crisp_and_small_not_blown_up(qtbot):
    from app.gui.grid import MARGIN, tiny_scale

    assert tiny_scale(14, 25, 110) == 2 and tiny_scale(300, 200, 110) == 0
    grid = _grid(qtbot)
    pm = QPixmap(14, 25)
    pm.fill(QColor("red"))
    img = _paint(grid, pm)
    assert _rgb(img, 60, 60) == (255, 0, 0)  # drawn, centred
    assert _rgb(img, MARGIN + 4, 60) != (255, 0, 0)  # but not stretched over the cell


def test_selection_ring_is_drawn_around_the_photo_and_names_only_on_hover(qtbot):
    from app.gui.grid import MARGIN

    grid = _grid(qtbot)
    pm = QPixmap(200, 200)
    pm.fill(QColor("#808080"))
    plain = _paint(grid, pm)
    selected = _paint(grid, pm, QStyle.StateFlag.State_Selected)
    inner = [
        (x, y) for x in range(MARGIN + 2, 120 - MARGIN - 2, 7) for y in range(MARGIN + 2, 120 - MARGIN - 2, 7)
    ]
    assert all(
        plain.pixelColor(x, y) == selected.pixelColor(x, y) for x, y in inner
    )  # the photo is untouched
    ring = selected.pixelColor(1, 60)
    assert ring == grid.palette().highlight().color() and plain.pixelColor(1, 60) == QColor("white")
    hovered = _paint(grid, pm, QStyle.StateFlag.State_MouseOver)
    band = [(x, y) for x in range(20, 100, 3) for y in range(98, 112)]
    assert all(plain.pixelColor(x, y) == QColor("#808080") for x, y in band)  # no file name by default
    assert any(hovered.pixelColor(x, y) != QColor("#808080") for x, y in band)  # the name on hover


def test_loading_cells_show_a_placeholder_then_the_photo(qtbot, real):
    win, _session, named, _ = real
    assert all(
        win.model.data(win.model.index(r), StateRole) in ("loading", "ready", "broken") for r in range(5)
    )
    qtbot.waitUntil(lambda: win.model.data(win.model.index(0), StateRole) == "ready", timeout=WAIT_MS)
    assert win.thumbs.cached(win.model.items[0].image_id).devicePixelRatio() == win.thumbs.dpr


def test_square_cells_fill_the_width_at_any_window_size(qtbot, real):
    win, *_ = real
    for width in (900, 1137, 1500):
        for cell in (120, 168, 260):
            win.resize(width, 800)
            win.grid.set_cell(cell)
            qtbot.wait(50)
            pitch, cols = win.grid.gridSize(), win.grid.columns()
            assert pitch.width() == pitch.height() >= win.grid.cell
            assert 1 <= win.grid.layout_width() - cols * pitch.width() <= cols  # no band left on the right
            # Qt really lays out that many columns (the last cell of the first row is in row one).
            first_row = [win.grid.visualRect(win.model.index(c)).top() for c in range(cols)]
            assert len(set(first_row)) == 1, (width, cell, first_row)
            assert win.grid.visualRect(win.model.index(cols)).top() > first_row[0]


def test_zoom_keys_and_slider_change_the_cell_size_and_it_is_remembered(qtbot, real, tmp_path):
    win, *_ = real
    before = win.grid.cell
    zoom_in = next(a for a in win.menuBar().actions()[2].menu().actions() if a.text() == "Zoom In")
    assert QKeySequence("Ctrl+=") in zoom_in.shortcuts()
    zoom_in.trigger()
    assert win.grid.cell == before + 24 and win.zoom.value() == before + 24
    win.zoom.setValue(100)
    assert win.grid.cell == 100
    qtbot.waitUntil(lambda: Settings.load().grid_cell == 100, timeout=5000)
    assert win.thumbs.size >= 150  # decoded large enough for a centre crop of a 3:2 photo


def test_arrow_keys_move_and_space_return_cmd_o_cmd_down_act_on_the_selected_photo(qtbot, real, monkeypatch):
    import app.gui.actions as actions

    win, *_ = real
    opened, previewed = [], []
    monkeypatch.setattr(actions, "open_path", lambda p: opened.append(p))
    monkeypatch.setattr(actions, "preview_current", lambda w: previewed.append(w.detail.path))
    win.activateWindow()
    win.grid.setFocus()
    win.grid.setCurrentIndex(win.model.index(0))
    qtbot.keyClick(win.grid, Qt.Key.Key_Right)
    assert win.grid.currentIndex().row() == 1
    qtbot.keyClick(win.grid, Qt.Key.Key_Down)
    assert win.grid.currentIndex().row() == 1 + win.grid.columns()
    path = win.model.items[1 + win.grid.columns()].path
    qtbot.waitUntil(lambda: win.detail.path == path, timeout=5000)
    qtbot.keyClick(win.grid, Qt.Key.Key_Space)
    qtbot.keyClick(win.grid, Qt.Key.Key_Return)
    qtbot.keyClick(win.grid, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(win.grid, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert previewed == [path] and opened == [path] * 3


# ---- consistent chrome ---------------------------------------------------------------------------
def test_status_bar_and_sidebar_describe_the_view_after_every_change(qtbot, real):
    win, session, named, emb = real
    status = lambda: win.jobs.label.text()  # noqa: E731

    def wait_status(prefix: str) -> None:
        qtbot.waitUntil(lambda: status().startswith(prefix), timeout=WAIT_MS)

    n = len(win.model.items)
    assert status() == f"All photos — {n} photos" and win.sidebar.marked() == ("view", "all")
    win.sidebar.select_view("errors")
    wait_status("Errors — 1 file could not be read")
    assert win.sidebar.marked() == ("view", "errors")
    emb.targets["red circle"] = named["astronaut"]
    qtbot.keyClicks(win.search, "red circle")
    qtbot.waitUntil(lambda: status().endswith("— “red circle”"), timeout=WAIT_MS)
    assert win.sidebar.marked() is None  # search results are no sidebar view
    win.search.clear()
    win._on_search_edited("")  # what the clear button or deleting the last letter does
    wait_status("Errors —")  # back where the search started
    assert win.stack.currentWidget() is win.errors_page and win.sidebar.marked() == ("view", "errors")
    win.sidebar.select_view("duplicates")
    wait_status("Duplicates — ")
    qtbot.waitUntil(lambda: "groups" in status(), timeout=WAIT_MS)
    assert win.sidebar.marked() == ("view", "duplicates")
    win.sidebar.select_view("tags")
    wait_status("Tags — none yet")
    win.sidebar.select_view("review")
    wait_status("Review queue — 0 photos")
    lib = str(session.libraries()[0].path)
    win.show_view("all", folder=lib, clear_search=True)
    wait_status(f"photos — {n} photos")
    assert win.sidebar.marked() == ("library", lib)
    win.sidebar.select_view("all")
    wait_status(f"All photos — {n} photos")


def test_view_menu_lists_every_sidebar_view_with_a_shortcut_and_help_explains_search(qtbot, real):
    from app.gui.help import SearchHelp
    from app.gui.sidebar import VIEWS

    win, *_ = real
    view_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&View")
    by_text = {a.text(): a for a in view_menu.actions()}
    for n, (key, title) in enumerate(VIEWS, start=1):
        assert by_text[title].shortcut() == QKeySequence(f"Ctrl+{n}")
        by_text[title].trigger()
        assert win.sidebar.marked() == ("view", key)
    help_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Help")
    assert "How Searching Works" in [a.text() for a in help_menu.actions()]
    text = SearchHelp(win).text.toPlainText()
    for must in (
        "-blue",
        "+sunset",
        '2:"a star"',
        "Drop a photo",
        "weaker matches",
        "No strong matches",
        "Review queue",
    ):
        assert must in text


# ---- search sections ------------------------------------------------------------------------------
def test_strong_matches_first_weak_ones_behind_a_collapsed_divider(qtbot, real):
    win, session, named, emb = real
    session.engine()._weak_override = {"text": 0.999, "image": 0.999}  # only the exact target is strong
    emb.targets["that astronaut"] = named["astronaut"]
    win.search.setText("that astronaut")
    win.run_search()
    qtbot.waitUntil(lambda: win.jobs.label.text().endswith("“that astronaut”"), timeout=WAIT_MS)
    items = win.model.items
    assert win.jobs.label.text().startswith("1 match · ") and "weaker" in win.jobs.label.text()
    assert items[0].path == str(named["astronaut"].resolve()) and not items[0].weak
    assert len(items) == 2 and items[1].divider  # collapsed: the weak ones are behind the tile
    assert not win.banner.isVisible()
    weak_n = int(win.jobs.label.text().split("· ")[1].split(" ")[0])
    win.grid.clicked.emit(win.model.index(1))
    assert len(win.model.items) == 2 + weak_n and all(it.weak for it in win.model.items[2:])
    assert win.model.items[0].path == str(named["astronaut"].resolve())  # the selection stayed
    win.grid.clicked.emit(win.model.index(1))
    assert len(win.model.items) == 2

    emb.targets["nothing like it"] = named["astronaut"]
    session.engine()._weak_override = {"text": 1.01, "image": 1.01}  # nothing can be strong
    win.search.setText("nothing like it")
    win.run_search()
    qtbot.waitUntil(lambda: win.jobs.label.text().endswith("“nothing like it”"), timeout=WAIT_MS)
    assert win.jobs.label.text().startswith("No strong matches · ")
    assert win.banner.isVisible() and "No strong matches" in win.banner.text()
    assert not any(it.divider for it in win.model.items) and all(it.weak for it in win.model.items)


def test_results_sections_count_and_divider_text():
    from app.gui.grid_model import GridItem
    from app.gui.views import Results

    r = Results(
        "“sky”",
        [GridItem(i, f"/p/{i}") for i in range(12)],
        [GridItem(i, f"/p/{i}", weak=True) for i in range(12, 200)],
    )
    assert r.status() == "12 matches · 188 weaker — “sky”"
    assert len(r.items()) == 13 and "188 weaker matches" in r.items()[-1].divider
    assert Results("“x”").status() == "No matches — “x”"


# ---- every state in the window ----------------------------------------------------------------------
def test_offline_model_download_failure_is_shown_in_the_window_until_dismissed(qtbot, real, monkeypatch):
    from PySide6.QtWidgets import QPushButton

    from app.gui.preferences import PreferencesDialog

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # huggingface_hub refuses the network at once: offline
    win, *_ = real
    view_line = win.jobs.label.text()
    dlg = PreferencesDialog(win)
    dlg.model.setCurrentText("clip-vit-b32")
    pull = next(b for b in dlg.findChildren(QPushButton) if b.text() == "Download and Convert")
    qtbot.mouseClick(pull, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Pulling clip-vit-b32" in win.notices.bars, timeout=WAIT_MS)
    bar = win.notices.bars["Pulling clip-vit-b32"]
    assert bar.isVisible() and bar.text.text().startswith("Pulling clip-vit-b32 failed: ")
    assert len(bar.text.text()) > len("Pulling clip-vit-b32 failed: ") + 5  # with the reason
    assert win.jobs.label.text() == view_line  # the view's line is not overwritten by the job
    qtbot.wait(300)
    assert bar.isVisible()  # it stays
    qtbot.mouseClick(bar.retry_btn, Qt.MouseButton.LeftButton)  # retry runs the job again; it fails again
    qtbot.waitUntil(
        lambda: (
            "Pulling clip-vit-b32" in win.notices.bars and win.notices.bars["Pulling clip-vit-b32"] is not bar
        ),
        timeout=WAIT_MS,
    )
    again = win.notices.bars["Pulling clip-vit-b32"]
    qtbot.mouseClick(
        next(b for b in again.findChildren(QPushButton) if b.text() == "Dismiss"), Qt.MouseButton.LeftButton
    )
    assert "Pulling clip-vit-b32" not in win.notices.bars and not win.notices.isVisible()


def test_caption_job_without_a_caption_model_reports_in_the_window(qtbot, real):
    win, *_ = real
    lib_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Library")
    next(a for a in lib_menu.actions() if a.text() == "Caption Photos").trigger()
    qtbot.waitUntil(lambda: "Captioning" in win.notices.bars, timeout=WAIT_MS)
    assert "Captioning failed: " in win.notices.bars["Captioning"].text.text()


def _library_with_a_photo(tmp_path: Path) -> Path:
    db = tmp_path / "lib.sqlite"
    s = Library(db, embedder=MatchingEmbedder())
    s.add_root(tmp_path)
    s.close()
    return db


@pytest.mark.parametrize("kind", ["corrupt", "folder", "read-only", "newer-schema", "not-database"])
def test_unopenable_library_asks_what_to_do_and_never_loses_the_file(qtbot, tmp_path, monkeypatch, kind):
    from app.gui.library_problem import BROWSE, NEW, LibraryProblemDialog, open_library

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    db = _library_with_a_photo(tmp_path)
    if kind == "corrupt":
        data = bytearray(db.read_bytes())
        data[100:4096] = b"\x00\xff" * ((4096 - 100) // 2)  # the header survives, the schema page does not
        db.write_bytes(bytes(data))
    elif kind == "not-database":
        db.write_bytes(b"holiday notes, not a database\n" * 50)
    elif kind == "folder":
        db.unlink()
        db.mkdir()
    elif kind == "read-only":
        db.chmod(0o444)
    elif kind == "newer-schema":
        with sqlite3.connect(db) as c:
            c.execute("PRAGMA user_version = 99")
    before = db.read_bytes() if db.is_file() else None
    seen = []

    def ask(problem):
        seen.append(problem)
        dlg = LibraryProblemDialog(problem)
        assert problem.summary in dlg.text.text() and dlg.new_btn.isVisible() or not dlg.isVisible()
        assert dlg.browse_btn.isVisibleTo(dlg) == problem.can_browse
        return (BROWSE if problem.can_browse else NEW), None

    session = open_library(db, None, "auto", ask=ask)
    assert session is not None and seen[0].kind == kind
    assert seen[0].can_browse == (kind in ("read-only", "newer-schema"))
    if kind in ("read-only", "newer-schema"):
        assert session.read_only and session.libraries()[0].path == tmp_path.resolve()
        assert db.read_bytes() == before  # browsing changed nothing
    else:
        aside = [
            p
            for p in tmp_path.iterdir()
            if ".unopenable-" in p.name and not p.name.endswith(("-wal", "-shm"))
        ]
        assert len(aside) == 1 and aside[0].name.startswith("lib.unopenable-")
        if before is not None:
            assert aside[0].read_bytes() == before  # moved aside, byte for byte
        else:
            assert aside[0].is_dir()
        assert session.libraries() == [] and not session.read_only  # a new, empty library in its place
    session.close()
    if kind == "read-only":
        db.chmod(0o644)


def test_read_only_library_opens_the_window_for_browsing_with_changes_off(qtbot, tmp_path, monkeypatch):
    from app.gui.main_window import MainWindow

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    photos = tmp_path / "photos"
    named = write_real_photos(photos)
    db = tmp_path / "lib.sqlite"
    emb = MatchingEmbedder()
    s = Library(db, embedder=emb)
    s.add_root(photos)
    for _ in s.index_job([photos]):
        pass
    s.close()
    db.chmod(0o444)
    session = Library(db, embedder=emb, read_only=True)
    win = MainWindow(session, tmp_path / "thumbs")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: len(win.model.items) > 10, timeout=WAIT_MS)
    assert "read-only" in win.notices.bars and not any(w.isEnabled() for w in win.write_widgets)
    emb.targets["cat"] = named["chelsea"]
    win.search.setText("cat")
    win.run_search()
    qtbot.waitUntil(lambda: win.jobs.label.text().endswith("“cat”"), timeout=WAIT_MS)
    assert win.model.items[0].path in (str(named["chelsea"].resolve()), str(named["exact_b"].resolve()))
    win.close()
    session.close()
    db.chmod(0o644)


# ---- duplicates ------------------------------------------------------------------------------------
def _accept_next_message_box(texts: list[str]) -> None:
    def accept() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, accept)
            return
        texts.append(box.text() + "\n" + box.informativeText())
        next(b for b in box.buttons() if b.text() == "Move to Trash").click()

    QTimer.singleShot(20, accept)


def test_duplicates_show_groups_with_facts_and_trash_only_the_chosen_file(qtbot, real, tmp_path):
    win, session, named, _ = real
    win.sidebar.select_view("duplicates")
    page = win.dups_page
    qtbot.waitUntil(lambda: any(g.kind == "exact" for g in page.groups), timeout=WAIT_MS)
    exact = next(g for g in page.groups if g.kind == "exact")
    assert {p.name for p in exact.paths} == {"chelsea.jpg", "chelsea copy.jpg"}
    keep_id = next(i for i, p in zip(exact.image_ids, exact.paths, strict=True) if p.name == "chelsea.jpg")
    copy_id = next(i for i in exact.image_ids if i != keep_id)
    facts = page.cells[keep_id].findChild(type(page.title), "dup-facts").text()
    assert "451 × 300" in facts and "KB" in facts  # noqa: RUF001

    n_at_95 = len(page.groups)
    page.slider.setValue(100)  # only identical pictures group now
    qtbot.waitUntil(
        lambda: page.threshold() == 1.0 and page.summary.text() and len(page.groups) <= n_at_95,
        timeout=WAIT_MS,
    )
    page.slider.setValue(95)
    qtbot.waitUntil(lambda: len(page.groups) == n_at_95 and copy_id in page.cells, timeout=WAIT_MS)

    page.cells[keep_id].keep.click()
    assert page.chosen == {copy_id} and page.trash_btn.isEnabled()
    before = digest(tmp_path / "photos")
    texts: list[str] = []
    _accept_next_message_box(texts)
    page.trash_btn.click()  # the library folders are read in the read worker, then the confirmation shows
    qtbot.waitUntil(lambda: "chelsea copy.jpg" not in digest(tmp_path / "photos"), timeout=WAIT_MS)
    assert texts and "chelsea copy.jpg" in texts[0] and "chelsea.jpg\n" not in texts[0]
    after = digest(tmp_path / "photos")
    assert set(before) - set(after) == {"chelsea copy.jpg"}
    assert all(after[name] == before[name] for name in after)  # everything else byte-identical
    trash = tmp_path / "home" / ".local" / "share" / "Trash" / "files" / "chelsea copy.jpg"
    assert trash.read_bytes() == named["exact_b"].with_name("chelsea.jpg").read_bytes()  # in the Trash, whole
    qtbot.waitUntil(lambda: session.image_records([copy_id]) == [], timeout=WAIT_MS)


def test_trash_plan_refuses_files_outside_the_libraries_and_keeps_one_of_each_group(tmp_path):
    from app.core.duplicates import DuplicateGroup, plan_trash

    lib, other = tmp_path / "lib", tmp_path / "elsewhere"
    lib.mkdir()
    other.mkdir()
    a, b, c = lib / "a.jpg", lib / "b.jpg", other / "c.jpg"
    for p in (a, b, c):
        p.write_bytes(b"x")
    g = DuplicateGroup("exact", [1, 2, 3], [a, b, c], 1.0)
    plan = plan_trash([g], {2, 3}, [lib])
    assert plan.move == [(2, b)] and plan.refused == [(c, "outside every library folder")]
    everything = plan_trash([g], {1, 2, 3}, [lib, other])
    assert [p for _, p in everything.move] == [b, c] and everything.refused[0][0] == a


# ---- tags ------------------------------------------------------------------------------------------
def test_tag_chips_filter_the_grid_and_review_keeps_the_selection_on_the_next_photo(qtbot, real):
    from app.core.tag_store import replace_machine_tags

    win, session, _named, emb = real
    ids = [it.image_id for it in win.model.items[:4]]
    rows = [(ids[0], "cat", 0.9, "auto"), (ids[1], "cat", 0.8, "auto"), (ids[2], "coffee", 0.7, "auto")]
    rows += [(i, "outdoors", 0.5 - 0.01 * n, "review") for n, i in enumerate(ids)]
    replace_machine_tags(session.store, ids, rows, emb.model_id)
    win.sidebar.select_view("tags")
    qtbot.waitUntil(
        lambda: win.jobs.label.text() == "Tags — 2 labels on 3 photos", timeout=WAIT_MS
    )  # read worker
    assert set(win.tags_page.chips) == {"cat", "coffee"} and win.tags_page.chips["cat"].text() == "cat  2"
    win.tags_page.chips["cat"].click()
    qtbot.waitUntil(lambda: win.jobs.label.text() == "Tag: cat — 2 photos", timeout=WAIT_MS)
    assert sorted(it.image_id for it in win.model.items) == sorted(ids[:2]) and win.sidebar.marked() == (
        "view",
        "tags",
    )

    win.sidebar.select_view("review")
    qtbot.waitUntil(lambda: len(win.model.items) == 4, timeout=WAIT_MS)
    order = [it.image_id for it in win.model.items]
    win.grid.setCurrentIndex(win.model.index(1))
    win.decide_tag(order[1], "outdoors", "confirmed")
    qtbot.waitUntil(lambda: len(win.model.items) == 3, timeout=WAIT_MS)
    assert [it.image_id for it in win.model.items] == order[:1] + order[2:]
    assert win.grid.currentIndex().row() == 1 and win.model.items[1].image_id == order[2]  # the next photo


def test_review_order_and_next_row_helpers():
    from app.gui.grid_model import GridItem
    from app.gui.views import next_row, stable_order

    items = [GridItem(i, "") for i in (5, 1, 4)]
    assert [it.image_id for it in stable_order([1, 4, 5], items)] == [1, 4, 5]
    assert next_row([1, 4, 5], 4, [GridItem(1, ""), GridItem(5, "")]) == 1
    assert next_row([1, 4, 5], 5, [GridItem(1, ""), GridItem(4, "")]) == 1  # the last one: the one before
    assert next_row([1, 4, 5], 4, [GridItem(1, ""), GridItem(4, "")]) == 1  # still listed: stays on it


def test_a_damaged_library_can_be_repaired_from_the_dialog(qtbot, tmp_path, monkeypatch):
    """A truncated file (SQLite refuses it whole) is salvaged by the dialog's Repair, then opens; a file
    whose table of contents is gone cannot be, and the dialog comes back saying why."""
    from app.gui.library_problem import NEW, REPAIR, LibraryProblemDialog, open_library
    from tests.test_doctor import build_library

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    db = tmp_path / "lib.sqlite"
    build_library(db, 600)
    with open(db, "r+b") as f:
        f.truncate(db.stat().st_size * 7 // 10)
    seen = []

    def ask(problem):
        seen.append(problem)
        dlg = LibraryProblemDialog(problem)
        assert dlg.repair_btn.isVisibleTo(dlg)
        return REPAIR, None

    lib = open_library(db, None, "auto", ask=ask)
    assert lib is not None and [p.kind for p in seen] == ["corrupt"]
    assert lib.store.conn.execute("SELECT count(*) FROM images").fetchone()[0] == 600
    assert len(list(tmp_path.glob("lib.damaged-*.sqlite"))) == 1
    lib.close()

    data = bytearray(db.read_bytes())
    data[100:4096] = b"\x00\xff" * ((4096 - 100) // 2)  # the schema page is gone: nothing to salvage
    db.write_bytes(bytes(data))
    answers, notes = [REPAIR, NEW], []

    def ask_again(problem):
        notes.append(problem.detail)
        return answers.pop(0), None

    lib = open_library(db, None, "auto", ask=ask_again)
    assert lib is not None and answers == [] and "The repair did not succeed" in notes[1]
    lib.close()
