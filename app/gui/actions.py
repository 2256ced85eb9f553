"""The toolbar, native menus and shortcuts, and the actions that leave the app (open, reveal)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QLineEdit, QMessageBox, QPushButton, QSizePolicy, QSlider, QToolBar, QWidget

from app.gui.drops import DropTarget
from app.gui.grid import MAX_CELL, MIN_CELL
from app.gui.mac_manners import add_window_menu, settings_title
from app.gui.sidebar import VIEWS

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

REVEAL_TEXT = "Reveal in Finder" if sys.platform == "darwin" else "Show in File Manager"


class SearchField(DropTarget, QLineEdit):
    """The toolbar search: live while typing; an image dropped on it runs a similar-image search."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window_ = window
        self.setObjectName("search")
        self.setPlaceholderText('Search photos: red circle, -blue, 2:"a star", or drop a photo here')
        self.setClearButtonEnabled(True)
        self.setMinimumWidth(420)
        self.setAcceptDrops(True)


def build_toolbar(win: MainWindow) -> tuple[SearchField, QSlider]:
    tb = QToolBar("Search", win)
    tb.setObjectName("toolbar")
    tb.setMovable(False)
    tb.setFloatable(False)
    win.addToolBar(tb)
    add = QPushButton("Add Folder…")
    add.clicked.connect(lambda: win.choose_folder())
    tb.addWidget(add)
    win.write_widgets = [add]  # turned off when the library is open read-only
    zoom = QSlider(Qt.Orientation.Horizontal)
    zoom.setObjectName("zoom")
    zoom.setRange(MIN_CELL, MAX_CELL)
    zoom.setValue(win.settings.grid_cell)
    zoom.setFixedWidth(140)
    zoom.setToolTip("Thumbnail size (Ctrl + and Ctrl −)")  # noqa: RUF001
    zoom.valueChanged.connect(lambda v: win.grid.set_cell(v))
    tb.addSeparator()
    tb.addWidget(zoom)
    spacer = QWidget()
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    tb.addWidget(spacer)
    search = SearchField(win)
    tb.addWidget(search)
    return search, zoom


def build_menus(win: MainWindow, platform: str = sys.platform) -> None:
    def act(menu, text: str, slot: Callable[[], object], keys=(), widget: QWidget | None = None) -> QAction:
        a = QAction(text, win)
        a.setMenuRole(QAction.MenuRole.NoRole)  # no guessing from the text; roles are set where meant
        a.setShortcuts([QKeySequence(k) for k in keys])
        a.triggered.connect(lambda _=False: slot())
        menu.addAction(a)
        if widget is not None:  # keys that type text elsewhere (Space, Return) act only in the grid
            a.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            widget.addAction(a)
        return a

    mb = win.menuBar()
    f = mb.addMenu("&File")
    writes = [
        act(f, "Add Folder…", win.choose_folder, ["Ctrl+Shift+O"]),
        act(f, "Open the Demo Library", win.open_demo),
    ]
    f.addSeparator()
    act(f, "Close Window", win.close, [QKeySequence.StandardKey.Close])
    # Quit, Settings and About move to the application menu on macOS; nothing is left dangling.
    act(f, "Quit", win.close, [QKeySequence.StandardKey.Quit]).setMenuRole(QAction.MenuRole.QuitRole)
    e = mb.addMenu("&Edit")
    act(e, "Find", lambda: (win.search.setFocus(), win.search.selectAll()), [QKeySequence.StandardKey.Find])
    # Qt maps "Ctrl+," to Cmd+, on macOS; elsewhere there is no standard Preferences key, so it is Ctrl+,.
    act(e, settings_title(platform), lambda: open_preferences(win), ["Ctrl+,"]).setMenuRole(
        QAction.MenuRole.PreferencesRole
    )
    v = mb.addMenu("&View")
    act(v, "Quick Look", lambda: preview_current(win), [Qt.Key.Key_Space], win.grid)
    # Return, Cmd+O and Cmd+Down open the selected photo, as in Finder; only while the grid has focus.
    act(v, "Open", lambda: open_path(win.detail.path), ["Return", "Enter", "Ctrl+O", "Ctrl+Down"], win.grid)
    act(v, REVEAL_TEXT, lambda: reveal_path(win.detail.path), ["Ctrl+Shift+R"])
    act(
        v,
        "Find Similar",
        lambda: win.detail.image_id is not None and win.find_similar(win.detail.image_id),
        ["Ctrl+Shift+F"],
    )
    v.addSeparator()
    for n, (key, title) in enumerate(VIEWS, start=1):
        act(v, title, lambda k=key: win.sidebar.select_view(k), [f"Ctrl+{n}"])
    v.addSeparator()
    act(v, "Zoom In", lambda: win.zoom_by(24), [QKeySequence.StandardKey.ZoomIn, "Ctrl+="])
    act(v, "Zoom Out", lambda: win.zoom_by(-24), [QKeySequence.StandardKey.ZoomOut])
    fit = act(v, "Show Whole Photos", lambda: win.set_fit(fit.isChecked()), ["Ctrl+Shift+W"])
    fit.setCheckable(True)
    fit.setChecked(win.settings.grid_fit)
    fit.setToolTip("Off: thumbnails fill square cells (centre crop); on: whole photos, letterboxed")
    win.fit_action = fit
    lib = mb.addMenu("&Library")
    writes += [
        act(lib, "Index All Libraries", win.reindex_all, ["Ctrl+R"]),
        act(lib, "Tag Photos", win.tag_all),
        act(lib, "Caption Photos", win.caption_all),
    ]
    win.write_widgets += writes
    add_window_menu(win, mb)
    # About moves to the application menu on macOS; the Help menu keeps its other entries there.
    h = mb.addMenu("&Help")
    act(h, "How Searching Works", lambda: show_search_help(win), [QKeySequence.StandardKey.HelpContents])
    from app.gui.help import docs_url

    act(h, "Fovea Documentation", lambda: QDesktopServices.openUrl(docs_url())).setEnabled(
        docs_url().isValid()
    )
    act(
        h,
        "About Fovea",
        lambda: QMessageBox.about(
            win,
            "About Fovea",
            "Fovea: on-device visual search for your photos.\n"
            "It reads your photos and never changes or deletes them; duplicates go to the Trash only "
            "when you confirm.",
        ),
    ).setMenuRole(QAction.MenuRole.AboutRole)
    win.detail.reveal.connect(reveal_path)
    win.detail.open_file.connect(open_path)
    win.detail.reveal_btn.setText(REVEAL_TEXT)


def show_search_help(win: MainWindow) -> None:
    from app.gui.help import SearchHelp

    SearchHelp(win).show()


def open_path(path: str) -> None:
    if path:
        QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def reveal_path(path: str) -> None:
    """Show the file in Finder (selected) or its folder in the file manager; never touches the file."""
    if not path:
        return
    if sys.platform == "darwin":
        subprocess.Popen(["open", "-R", path])
    elif sys.platform == "win32":
        subprocess.Popen(["explorer", "/select,", path])
    else:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))


def preview_current(win: MainWindow) -> None:
    from app.gui.preview import PreviewDialog

    if win.detail.path:
        PreviewDialog(win.detail.path, win.previews.cache_dir, win, win.why.current_image()).exec()


def open_preferences(win: MainWindow) -> None:
    from app.gui.preferences import PreferencesDialog

    PreferencesDialog(win).exec()
