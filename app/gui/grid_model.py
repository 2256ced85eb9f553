"""The results grid's Qt model: a thin adapter over a list of core hits."""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QPixmap

from app.gui.thumbnails import ThumbnailLoader

IdRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
ScoreRole = Qt.ItemDataRole.UserRole + 3
WeakRole = Qt.ItemDataRole.UserRole + 4


@dataclass(frozen=True)
class GridItem:
    image_id: int
    path: str
    score: float | None = None
    weak: bool = False


def _placeholder(size: int, color: str) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(QColor(color))
    return pm


class ResultsModel(QAbstractListModel):
    def __init__(self, thumbs: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.thumbs = thumbs
        self.items: list[GridItem] = []
        self._row_of: dict[int, int] = {}
        self._loading = _placeholder(thumbs.size, "#8e8e93")
        self._broken = _placeholder(thumbs.size, "#6e2b2b")
        thumbs.loaded.connect(self._on_thumb)

    def set_items(self, items: list[GridItem]) -> None:
        self.beginResetModel()
        self.thumbs.new_generation()
        self.items = items
        self._row_of = {it.image_id: i for i, it in enumerate(items)}
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        it = self.items[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            pm = self.thumbs.pixmap(it.image_id, it.path)
            if pm is not None:
                return pm
            return self._broken if self.thumbs.failed(it.image_id) else self._loading
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(it.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                it.path
                if it.score is None
                else f"{it.path}\nscore {it.score:.3f}" + (" (weak)" if it.weak else "")
            )
        return {IdRole: it.image_id, PathRole: it.path, ScoreRole: it.score, WeakRole: it.weak}.get(role)

    def _on_thumb(self, image_id: int) -> None:
        row = self._row_of.get(image_id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
