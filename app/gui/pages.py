"""The centre pages besides the grid: the empty state that invites a drop, Errors and Tags."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QPushButton,
    QScrollArea,
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


class FlowLayout(QLayout):
    """Lays children out left to right, wrapping to the next line (Qt's flow-layout example, trimmed)."""

    def __init__(self, parent=None, spacing: int = 8) -> None:
        super().__init__(parent)
        self._items: list = []
        self._gap = spacing

    def addItem(self, item) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, i: int):
        return self._items[i] if 0 <= i < len(self._items) else None

    def takeAt(self, i: int):
        return self._items.pop(i) if 0 <= i < len(self._items) else None

    def expandingDirections(self):
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:
        return self.minimumSize()

    def minimumSize(self) -> QSize:
        size = QSize()
        for it in self._items:
            size = size.expandedTo(it.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _place(self, rect: QRect, move: bool) -> int:
        m = self.contentsMargins()
        r = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, line = r.x(), r.y(), 0
        for it in self._items:
            hint = it.sizeHint()
            if x + hint.width() > r.right() and line > 0:
                x, y, line = r.x(), y + line + self._gap, 0
            if move:
                it.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._gap
            line = max(line, hint.height())
        return y + line - rect.y() + m.bottom()


class TagsPage(QScrollArea):
    """Tag chips with their photo counts, most used first; clicking one shows its photos in the grid."""

    tag_chosen = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("tags")
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(18, 14, 18, 14)
        self.header = QLabel()
        self.header.setObjectName("tags-header")
        self.header.setWordWrap(True)
        lay.addWidget(self.header)
        self.chips_box = QWidget()
        self.flow = FlowLayout(self.chips_box)
        lay.addWidget(self.chips_box)
        lay.addStretch(1)
        self.setWidget(body)
        self.chips: dict[str, QPushButton] = {}

    def set_counts(self, counts: dict[str, int]) -> None:
        for chip in self.chips.values():
            self.flow.removeWidget(chip)
            chip.hide()
            chip.deleteLater()
        self.chips = {}
        if not counts:
            self.header.setText(
                "<h3>Tags</h3><p>No tags yet. Library ▸ Tag Photos names what is in each photo; the tags "
                "it is sure of appear here, the ones it is unsure of wait in the Review queue.</p>"
            )
            return
        self.header.setText(
            f"<h3>Tags</h3><p>{len(counts)} tags. Click one to see its photos; "
            "confirmed and confidently applied tags are counted.</p>"
        )
        for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            chip = QPushButton(f"{label}  {n:,}")
            chip.setObjectName("chip")
            chip.setToolTip(f"{n:,} photo{'s' if n != 1 else ''} tagged “{label}”")
            chip.setCursor(Qt.CursorShape.PointingHandCursor)
            chip.clicked.connect(lambda _=False, lb=label: self.tag_chosen.emit(lb))
            self.flow.addWidget(chip)
            self.chips[label] = chip
