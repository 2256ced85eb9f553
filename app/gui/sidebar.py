"""The sidebar: libraries with their photo count and state, and the fixed views."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem

if TYPE_CHECKING:
    from app.core.contracts import LibrarySummary

VIEWS = (
    ("all", "All photos"),
    ("review", "Review queue"),
    ("tags", "Tags"),
    ("duplicates", "Duplicates"),
    ("errors", "Errors"),
)
KindRole = Qt.ItemDataRole.UserRole + 10
KeyRole = Qt.ItemDataRole.UserRole + 11


class Sidebar(QTreeWidget):
    view_selected = Signal(str)  # a key of VIEWS
    library_selected = Signal(str)  # root path
    folders_dropped = Signal(list)  # list[str]
    other_dropped = Signal(str)  # explanation to show

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setMinimumWidth(200)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.libraries = QTreeWidgetItem(self, ["Libraries"])
        self.views = QTreeWidgetItem(self, ["Views"])
        for item in (self.libraries, self.views):
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            f = item.font(0)
            f.setBold(True)
            item.setFont(0, f)
        self._view_items: dict[str, QTreeWidgetItem] = {}
        for key, title in VIEWS:
            it = QTreeWidgetItem(self.views, [title])
            it.setData(0, KindRole, "view")
            it.setData(0, KeyRole, key)
            self._view_items[key] = it
        self.expandAll()
        self.itemSelectionChanged.connect(self._on_select)

    def set_libraries(self, libs: list[LibrarySummary]) -> None:
        """One row per library: name, count, state ('online' | 'offline' | 'indexing'), errors."""
        current = self.currentItem()
        selected = current.data(0, KeyRole) if current is not None else None
        self.blockSignals(True)  # rebuilding must not look like the user choosing a library
        self.libraries.takeChildren()
        for lib in libs:
            path = str(lib.path)
            name = lib.path.name or path
            state = []
            if lib.state != "online":
                state.append(lib.state)
            if lib.errors:
                state.append(f"{lib.errors} error{'s' if lib.errors > 1 else ''}")
            suffix = f" · {', '.join(state)}" if state else ""
            it = QTreeWidgetItem(self.libraries, [f"{name}  {lib.count:,}{suffix}"])
            it.setToolTip(0, f"{path}\n{lib.count:,} photos" + (f" · {', '.join(state)}" if state else ""))
            if lib.state == "offline":
                it.setForeground(0, self.palette().placeholderText())
            if path == selected:
                self.setCurrentItem(it)
            it.setData(0, KindRole, "library")
            it.setData(0, KeyRole, path)
        self.libraries.setExpanded(True)
        self.blockSignals(False)

    def library_count(self) -> int:
        return self.libraries.childCount()

    def set_view_count(self, key: str, count: int | None) -> None:
        title = dict(VIEWS)[key]
        self._view_items[key].setText(0, f"{title}  {count:,}" if count else title)

    def mark(self, kind: str | None, key: str | None = None) -> None:
        """Show which view the window is in without choosing it again (None: no sidebar view, e.g. search)."""
        target = None
        if kind == "view":
            target = self._view_items.get(key or "")
        elif kind == "library":
            target = next(
                (
                    c
                    for c in (self.libraries.child(i) for i in range(self.library_count()))
                    if c.data(0, KeyRole) == key
                ),
                None,
            )
        self.blockSignals(True)
        if target is None:
            self.clearSelection()
            self.setCurrentIndex(self.rootIndex())  # an invalid index: nothing current
        else:
            self.setCurrentItem(target)
        self.blockSignals(False)

    def marked(self) -> tuple[str, str] | None:
        """(kind, key) of the highlighted item, or None."""
        items = self.selectedItems()
        return (items[0].data(0, KindRole), items[0].data(0, KeyRole)) if items else None

    def select_view(self, key: str) -> None:
        if self.currentItem() is self._view_items[key]:
            self.view_selected.emit(key)  # choosing the shown view again refreshes it
        self.setCurrentItem(self._view_items[key])

    def _on_select(self) -> None:
        items = self.selectedItems()
        if not items:
            return
        kind, key = items[0].data(0, KindRole), items[0].data(0, KeyRole)
        if kind == "view":
            self.view_selected.emit(key)
        elif kind == "library":
            self.library_selected.emit(key)

    # Drops: folders become libraries; anything else gets a short explanation.
    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dragMoveEvent(self, e) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        from app.gui.drops import classify_drop

        folders, _images, other = classify_drop(e.mimeData())
        if folders:
            self.folders_dropped.emit(folders)
        elif other:
            self.other_dropped.emit(other)
        e.acceptProposedAction()
