"""The results grid's Qt model: a thin adapter over a list of core hits, with an optional divider tile."""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from app.gui.thumbnails import ThumbnailLoader

IdRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
ScoreRole = Qt.ItemDataRole.UserRole + 3
WeakRole = Qt.ItemDataRole.UserRole + 4
StateRole = Qt.ItemDataRole.UserRole + 5  # "ready" | "loading" | "broken" | "divider"


@dataclass(frozen=True)
class GridItem:
    image_id: int
    path: str
    score: float | None = None
    weak: bool = False
    divider: str = ""  # non-empty: not a photo but the "Weaker matches" tile with this text


def divider(text: str) -> GridItem:
    return GridItem(0, "", divider=text)


class ResultsModel(QAbstractListModel):
    def __init__(self, thumbs: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.thumbs = thumbs
        self.items: list[GridItem] = []
        self._row_of: dict[int, int] = {}
        thumbs.loaded.connect(self._on_thumb)

    def set_items(self, items: list[GridItem]) -> None:
        self.beginResetModel()
        self.thumbs.new_generation()
        self.items = items
        self._row_of = {it.image_id: i for i, it in enumerate(items) if not it.divider}
        self.endResetModel()

    def photos(self) -> list[GridItem]:
        return [it for it in self.items if not it.divider]

    def row_of(self, image_id: int) -> int | None:
        return self._row_of.get(image_id)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def flags(self, index):
        if index.isValid() and self.items[index.row()].divider:
            return Qt.ItemFlag.ItemIsEnabled  # clickable, never selected: arrows and ranges skip it
        return super().flags(index)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        it = self.items[index.row()]
        if it.divider:
            return {
                Qt.ItemDataRole.DisplayRole: it.divider,
                StateRole: "divider",
                Qt.ItemDataRole.ToolTipRole: "Show or hide the weaker matches",
            }.get(role)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.pixmap(it.image_id, it.path)
        if role == StateRole:
            if self.thumbs.cached(it.image_id) is not None:
                return "ready"
            return "broken" if self.thumbs.failed(it.image_id) else "loading"
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(it.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            name = os.path.basename(it.path)
            if it.score is None:
                return name
            return f"{name}\nscore {it.score:.3f}" + (" (weaker match)" if it.weak else "")
        return {IdRole: it.image_id, PathRole: it.path, ScoreRole: it.score, WeakRole: it.weak}.get(role)

    def _on_thumb(self, image_id: int) -> None:
        row = self._row_of.get(image_id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
