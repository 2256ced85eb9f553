"""Starting the window: QApplication, palettes, the library, the first-run offer."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.core.cache import evict, migrate_old_thumbnails, thumbnails_dir
from app.core.settings import Settings
from app.gui.mac_manners import apply_color_scheme
from app.gui.threads import configure_global_pool

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

DARK = {
    "Window": "#1e1e1e",
    "WindowText": "#e6e6e6",
    "Base": "#252526",
    "AlternateBase": "#2d2d30",
    "Text": "#e6e6e6",
    "Button": "#333337",
    "ButtonText": "#e6e6e6",
    "Highlight": "#0a84ff",
    "HighlightedText": "#ffffff",
    "ToolTipBase": "#333337",
    "ToolTipText": "#e6e6e6",
    "PlaceholderText": "#8a8a8a",
    "Mid": "#3c3c3c",
    "Dark": "#151515",
    "Light": "#4a4a4a",
}
# The banner: amber for weak results, blue for notices; readable on both palettes.
STYLE = """
QLabel#banner { padding: 7px 10px; border-radius: 5px; }
QLabel#banner[kind="weak"] { background: #f6e7b0; color: #3d3000; }
QLabel#banner[kind="info"] { background: #d6e8fb; color: #0b2c4d; }
QFrame#notice { background: #f8d7d3; border-radius: 5px; }
QFrame#notice QLabel { color: #4a0f08; }
QPushButton#chip { border: 1px solid palette(mid); border-radius: 13px; padding: 4px 12px; background: palette(base); }
QPushButton#chip:hover { border-color: palette(highlight); }
QFrame#dup-group { border: 1px solid palette(mid); border-radius: 6px; }
QLabel#dup-facts { color: palette(placeholder-text); }
"""


def dark_palette() -> QPalette:
    p = QPalette()
    for role, colour in DARK.items():
        p.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    for role in ("WindowText", "Text", "ButtonText"):  # disabled widgets: dimmed, still legible
        p.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, role), QColor("#7a7a7a"))
    return p


def apply_appearance(appearance: str) -> None:
    """system: follow the platform (macOS dark mode included); light or dark: forced.

    Qt's color scheme drives the native macOS controls and title bar; with Fusion (Linux, Windows) the
    palette decides the colours, so it is set too.
    """
    app = QApplication.instance()
    if app is None:
        return
    apply_color_scheme(app, appearance)
    if sys.platform != "darwin":
        app.setPalette(dark_palette() if appearance == "dark" else app.style().standardPalette())
    app.setStyleSheet(STYLE)


def trim_thumbnail_cache(win, cap_mb: int) -> None:
    """Least-recently-used eviction down to the cap, off the GUI thread (a big cache takes a second to scan)."""
    win.call(win.side, lambda: evict(thumbnails_dir(), cap_mb * 2**20), lambda _: None, "thumbnail cache")


class FoveaApplication(QApplication):
    """Adds macOS file-open events: folders dropped on the Dock icon become libraries."""

    def __init__(self, argv: list[str]) -> None:
        super().__init__(argv)
        self.window = None
        self.pending: list[str] = []

    def event(self, e) -> bool:
        if e.type() == QEvent.Type.FileOpen:
            path = e.file()
            if self.window is None:
                self.pending.append(path)
            elif Path(path).is_dir():
                self.window.add_folders([path])
            else:
                self.window.find_similar(path)
            return True
        return super().event(e)


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or FoveaApplication(argv or sys.argv[:1])
    app.setApplicationName("Fovea")
    app.setOrganizationName("Fovea")
    if sys.platform != "darwin":
        app.setStyle("Fusion")  # the native style on macOS; a clean, consistent one elsewhere
    app.setStyleSheet(STYLE)
    configure_global_pool()
    return app


def start(win: MainWindow, folder: str | None, demo: bool, offer: bool = True) -> None:
    """What the window does first: add `folder`, or, with no library yet, the demo job (`demo`) or the
    welcome dialog (`offer`). Whether there is a library is read in the window's read worker."""
    from app.gui.first_run import offer_first_run

    if win.lib.read_only:
        return  # browse only: nothing is added or indexed
    if folder:
        win.add_folders([folder])
        return

    def then(libraries: list) -> None:
        if libraries:
            return
        if demo:
            win.open_demo()
        elif offer:
            offer_first_run(win)

    win.call(win.side, win.lib.libraries, then, "libraries")


def run(
    db: Path,
    model: str | None,
    backend: str | None,
    folder: str | None = None,
    demo: bool = False,
) -> int:
    """Open the window; with `demo`, the demo job (write, index, tag) runs when there is no library yet."""
    from app.gui.main_window import MainWindow

    app = make_app()
    settings = Settings.load()
    apply_appearance(settings.appearance)
    from app.gui.library_problem import open_library

    lib = open_library(Path(db), model or settings.model, backend or settings.backend)
    if lib is None:
        return 1  # the library could not be opened and the person chose to quit
    migration = migrate_old_thumbnails()  # from <user data>/thumbnails, before anything writes the new one
    win = MainWindow(lib, thumbnails_dir())
    win.show()
    if migration is not None:
        win.notice(migration.detail)
    trim_thumbnail_cache(win, settings.thumbnail_cache_mb)
    pending = list(getattr(app, "pending", []))
    if isinstance(app, FoveaApplication):
        app.window = win
    quit_after = os.environ.get("FOVEA_GUI_QUIT_AFTER_MS")  # smoke tests of the (frozen) app
    if quit_after:
        QTimer.singleShot(int(quit_after), app.quit)
    folder = folder or next((p for p in pending if Path(p).is_dir()), None)
    start(win, folder, demo, offer=not quit_after)
    code = app.exec()
    lib.close()
    return code
