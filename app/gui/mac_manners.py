"""Small pieces that make the window behave like a Mac app (and do no harm elsewhere): appearance through
Qt's color scheme, the Window menu, the Settings/Preferences name, and re-rendering on a new pixel ratio."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenuBar

# Roles Qt moves out of their menu into the application menu on macOS.
MOVED_ROLES = (
    QAction.MenuRole.QuitRole,
    QAction.MenuRole.PreferencesRole,
    QAction.MenuRole.AboutRole,
    QAction.MenuRole.AboutQtRole,
    QAction.MenuRole.ApplicationSpecificRole,
)


def color_scheme_for(appearance: str) -> Qt.ColorScheme | None:
    """The scheme to force for a Settings.appearance value; None means follow the system (unset)."""
    return {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(appearance)


def apply_color_scheme(app, appearance: str) -> None:
    """QStyleHints.setColorScheme (Qt 6.8): on macOS it switches the native controls and title bar too."""
    hints = app.styleHints()
    scheme = color_scheme_for(appearance)
    if scheme is None:
        hints.unsetColorScheme()
    else:
        hints.setColorScheme(scheme)


def settings_title(plat: str = sys.platform, mac_release: str | None = None) -> str:
    """ "Settings…" on macOS 13 and later (Apple renamed Preferences there), else "Preferences…"."""
    if plat != "darwin":
        return "Preferences…"
    release = mac_release if mac_release is not None else platform.mac_ver()[0]
    major = int(release.split(".")[0]) if release.split(".")[0].isdigit() else 0
    return "Settings…" if major >= 13 else "Preferences…"


def add_window_menu(win: QMainWindow, menubar: QMenuBar) -> None:
    """Window › Minimize (⌘M) and Zoom, as every Mac app has; Qt maps Ctrl to ⌘ on macOS."""
    menu = menubar.addMenu("&Window")
    minimize = QAction("Minimize", win)
    minimize.setShortcut(QKeySequence("Ctrl+M"))
    minimize.triggered.connect(lambda _=False: win.showMinimized())
    zoom = QAction("Zoom", win)
    zoom.triggered.connect(lambda _=False: win.showNormal() if win.isMaximized() else win.showMaximized())
    for a in (minimize, zoom):
        a.setMenuRole(QAction.MenuRole.NoRole)
        menu.addAction(a)


class PixelRatioWatcher(QObject):
    """Calls `on_change(ratio)` when the watched widget lands on a screen with another devicePixelRatio."""

    def __init__(self, widget, on_change: Callable[[float], None], ratio: Callable[[], float] | None = None):
        super().__init__(widget)
        self._ratio = ratio or widget.devicePixelRatioF
        self._on_change = on_change
        self._last = self._ratio()
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() in (QEvent.Type.DevicePixelRatioChange, QEvent.Type.ScreenChangeInternal):
            now = self._ratio()
            if now != self._last:
                self._last = now
                self._on_change(now)
        return False
