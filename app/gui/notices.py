"""Errors shown where the person is looking: one bar per failed job above the grid, with the one-line
reason, Retry and Dismiss. A bar stays until dismissed or retried; nothing is reported only on stderr."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class NoticeBar(QFrame):
    dismissed = Signal(str)  # its key

    def __init__(self, key: str, text: str, retry: Callable[[], object] | None, parent=None) -> None:
        super().__init__(parent)
        self.key = key
        self.setObjectName("notice")
        self.setProperty("kind", "error")
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 4, 4, 4)
        self.text = QLabel(text)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.text, 1)
        self.retry_btn = QPushButton("Retry")
        self.retry_btn.setVisible(retry is not None)
        self.retry_btn.clicked.connect(lambda: (self.dismissed.emit(self.key), retry and retry()))
        row.addWidget(self.retry_btn)
        close = QPushButton("Dismiss")
        close.clicked.connect(lambda: self.dismissed.emit(self.key))
        row.addWidget(close)


class Notices(QWidget):
    """A column of NoticeBars; a new error for the same key replaces the old bar."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._col = QVBoxLayout(self)
        self._col.setContentsMargins(0, 0, 0, 0)
        self._col.setSpacing(4)
        self.bars: dict[str, NoticeBar] = {}
        self.setVisible(False)

    def show_error(self, key: str, text: str, retry: Callable[[], object] | None = None) -> NoticeBar:
        self.dismiss(key)
        bar = NoticeBar(key, text, retry, self)
        bar.dismissed.connect(self.dismiss)
        self.bars[key] = bar
        self._col.addWidget(bar)
        self.setVisible(True)
        return bar

    def dismiss(self, key: str) -> None:
        bar = self.bars.pop(key, None)
        if bar is not None:
            bar.hide()
            bar.deleteLater()
        self.setVisible(bool(self.bars))

    def texts(self) -> list[str]:
        return [b.text.text() for b in self.bars.values()]
