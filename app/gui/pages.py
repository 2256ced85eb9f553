"""The centre pages besides the grid: the empty state that invites a drop, Errors and Tags."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


class EmptyPage(QWidget):
    """'Drop a folder here' on first run; a short reason on an empty view."""

    add_folder = Signal()
    open_demo = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("empty")
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        self.title = QLabel()
        self.title.setObjectName("empty-title")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 1.6)
        f.setBold(True)
        self.title.setFont(f)
        self.body = QLabel()
        self.body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.setWordWrap(True)
        lay.addWidget(self.title)
        lay.addWidget(self.body)
        row = QHBoxLayout()
        row.addStretch(1)
        self.add_btn = QPushButton("Add Folder…")
        self.demo_btn = QPushButton("Open the Demo Library")
        self.add_btn.clicked.connect(self.add_folder)
        self.demo_btn.clicked.connect(self.open_demo)
        row.addWidget(self.add_btn)
        row.addWidget(self.demo_btn)
        row.addStretch(1)
        lay.addSpacing(12)
        lay.addLayout(row)
        lay.addStretch(2)

    def invite(self) -> None:
        """First run: no library yet."""
        self.title.setText("Drop a folder of photos here")
        self.body.setText(
            "Fovea indexes it on this computer, so you can search by what is in the pictures.\n"
            "Your photos are only read, never moved, changed or deleted."
        )
        self._buttons(True)

    def explain(self, title: str, body: str = "") -> None:
        self.title.setText(title)
        self.body.setText(body)
        self._buttons(False)

    def _buttons(self, visible: bool) -> None:
        self.add_btn.setVisible(visible)
        self.demo_btn.setVisible(visible)


class ErrorsPage(QTableWidget):
    """Files that could not be read, with the reason; they stay listed until they read again."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, 3, parent)
        self.setObjectName("errors")
        self.setHorizontalHeaderLabels(["File", "Reason", "When"])
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        h = self.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)

    def set_rows(self, rows: list[tuple[Path, str, float]]) -> None:
        self.setRowCount(len(rows))
        for r, (path, reason, when) in enumerate(rows):
            texts = (
                Path(path).name,
                reason or "",
                time.strftime("%Y-%m-%d %H:%M", time.localtime(when or 0)),
            )
            for c, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setToolTip(str(path) if c == 0 else text)
                self.setItem(r, c, item)
        self.setColumnWidth(0, 260)

    def paths(self) -> list[str]:
        return [self.item(r, 0).toolTip() for r in range(self.rowCount())]


class TagsPage(QListWidget):
    """Labels with their photo counts; choosing one shows its photos."""

    tag_chosen = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("tags")
        self.itemActivated.connect(lambda it: self.tag_chosen.emit(it.data(Qt.ItemDataRole.UserRole)))
        self.itemClicked.connect(lambda it: self.tag_chosen.emit(it.data(Qt.ItemDataRole.UserRole)))

    def set_counts(self, counts: dict[str, int]) -> None:
        self.clear()
        for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            it = QListWidgetItem(f"{label}    {n} photo{'s' if n != 1 else ''}")
            it.setData(Qt.ItemDataRole.UserRole, label)
            self.addItem(it)
