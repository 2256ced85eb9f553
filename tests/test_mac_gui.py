"""Mac manners of the window, checked with Qt's offscreen platform: appearance through Qt's color
scheme, the Window menu and ⌘W, menus that stay tidy once macOS moves Quit/Settings/About away, the
Settings title, and thumbnails re-rendered when the window moves to a screen with another pixel ratio."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, Qt  # noqa: E402
from PySide6.QtGui import QAction, QKeySequence  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from app.core.api import Library  # noqa: E402
from app.gui.mac_manners import (  # noqa: E402
    MOVED_ROLES,
    PixelRatioWatcher,
    apply_color_scheme,
    color_scheme_for,
    settings_title,
)
from tests.builders.fake_embedder import FakeEmbedder  # noqa: E402


class FakeHints:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def setColorScheme(self, scheme) -> None:  # noqa: N802
        self.calls.append(("set", scheme))

    def unsetColorScheme(self) -> None:  # noqa: N802
        self.calls.append(("unset",))


class FakeApp:
    def __init__(self) -> None:
        self.hints = FakeHints()

    def styleHints(self) -> FakeHints:  # noqa: N802
        return self.hints


def test_appearance_goes_through_qt_color_scheme_and_system_unsets_it() -> None:
    app = FakeApp()
    for appearance in ("dark", "light", "system"):
        apply_color_scheme(app, appearance)
    assert app.hints.calls == [("set", Qt.ColorScheme.Dark), ("set", Qt.ColorScheme.Light), ("unset",)]
    assert color_scheme_for("nonsense") is None


def test_appearance_reaches_the_real_style_hints(qapp) -> None:
    from app.gui.app import apply_appearance

    apply_appearance("dark")  # QStyleHints.setColorScheme exists (PySide6 >= 6.8) and accepts it
    apply_appearance("system")
    assert hasattr(QApplication.styleHints(), "unsetColorScheme")


def test_settings_is_called_settings_on_macos_13_and_later() -> None:
    assert settings_title("darwin", "14.6") == "Settings…" and settings_title("darwin", "13.0") == "Settings…"
    assert settings_title("darwin", "12.7") == "Preferences…" and settings_title("linux") == "Preferences…"


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch):
    from app.gui.main_window import MainWindow

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    win = MainWindow(Library(tmp_path / "library.sqlite", embedder=FakeEmbedder()), tmp_path / "thumbs")
    qtbot.addWidget(win)
    return win


def _menus(win) -> dict[str, list[QAction]]:
    return {a.text().replace("&", ""): a.menu().actions() for a in win.menuBar().actions() if a.menu()}


def _shown(actions: list[QAction], platform: str) -> list[str]:
    """What the menu shows: on macOS the actions with a moved role are in the application menu instead."""
    moved = MOVED_ROLES if platform == "darwin" else ()
    return ["---" if a.isSeparator() else a.text() for a in actions if a.menuRole() not in moved]


def test_window_menu_and_close_window_shortcut(window) -> None:
    menus = _menus(window)
    by_text = {a.text(): a for a in menus["Window"]}
    assert by_text["Minimize"].shortcut() == QKeySequence("Ctrl+M")  # ⌘M on macOS
    window.show()
    by_text["Zoom"].trigger()
    assert window.isMaximized()
    by_text["Zoom"].trigger()
    assert not window.isMaximized()
    close = next(a for a in menus["File"] if a.text() == "Close Window")
    assert close.shortcut() == QKeySequence(QKeySequence.StandardKey.Close)  # ⌘W on macOS


@pytest.mark.parametrize("platform", ["darwin", "linux"])
def test_menus_keep_no_stray_separators_or_empty_menus_once_roles_move(window, platform) -> None:
    from app.gui.actions import build_menus

    window.menuBar().clear()
    build_menus(window, platform=platform)
    menus = _menus(window)
    assert "Help" in menus  # on macOS About moves away, How Searching Works and the documentation stay
    for title, actions in menus.items():
        shown = _shown(actions, platform)
        assert shown, f"{title} is empty"
        assert shown[0] != "---" and shown[-1] != "---", f"{title}: {shown}"
        assert all(not (a == b == "---") for a, b in zip(shown, shown[1:], strict=False)), f"{title}: {shown}"
        # Only the actions meant to move carry a role; nothing is moved by Qt's guess from the text.
        assert all(
            a.menuRole() in (*MOVED_ROLES, QAction.MenuRole.NoRole) for a in actions if not a.isSeparator()
        )
    roles = {a.menuRole() for acts in menus.values() for a in acts}
    assert {QAction.MenuRole.QuitRole, QAction.MenuRole.PreferencesRole, QAction.MenuRole.AboutRole} <= roles


def test_pixel_ratio_watcher_reports_only_real_changes(qtbot) -> None:
    w = QWidget()
    qtbot.addWidget(w)
    ratio, seen = [1.0], []
    PixelRatioWatcher(w, seen.append, ratio=lambda: ratio[0])
    QApplication.sendEvent(w, QEvent(QEvent.Type.DevicePixelRatioChange))
    ratio[0] = 2.0
    QApplication.sendEvent(w, QEvent(QEvent.Type.DevicePixelRatioChange))
    QApplication.sendEvent(w, QEvent(QEvent.Type.DevicePixelRatioChange))
    assert seen == [2.0]


def test_a_new_pixel_ratio_re_decodes_thumbnails_at_it(qtbot, tmp_path) -> None:
    from PIL import Image

    from app.gui.thumbnails import ThumbnailLoader

    photo = tmp_path / "p.png"
    Image.new("RGB", (400, 300), (200, 40, 40)).save(photo)
    loader = ThumbnailLoader(tmp_path / "cache", size=100, dpr=1.0)
    assert loader.pixmap(1, str(photo)) is None  # queued, decoded in a worker
    qtbot.waitUntil(lambda: loader.cached(1) is not None, timeout=20_000)
    assert loader.cached(1).devicePixelRatio() == 1.0
    assert loader.set_size(loader.size, 2.0) and loader.cached(1) is None  # the 1x pixmap is dropped
    assert loader.pixmap(1, str(photo)) is None
    qtbot.waitUntil(lambda: loader.cached(1) is not None, timeout=20_000)
    pm = loader.cached(1)
    assert pm.devicePixelRatio() == 2.0 and max(pm.width(), pm.height()) == 200
    assert not loader.set_size(loader.size, 2.0)  # same ratio again: nothing to redo


def test_the_window_passes_a_new_pixel_ratio_to_thumbnails_and_previews(window) -> None:
    thumbs, gen = window.thumbs, window.thumbs.generation
    window.on_pixel_ratio_changed(2.0)
    assert (thumbs.dpr, thumbs.pixel_size, window.previews.pixel_size) == (2.0, round(2 * thumbs.size), 960)
    assert thumbs.generation == gen + 1  # queued loads at the old ratio are dropped
