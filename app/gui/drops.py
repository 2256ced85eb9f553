"""What a drop holds: folders (new libraries), images (similar search) or something else."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData

from app.core.query import IMAGE_EXTENSIONS


def classify_drop(mime: QMimeData) -> tuple[list[str], list[str], str]:
    """(folders, image files, a short explanation when nothing usable was dropped, else '')."""
    folders, images, other = [], [], []
    for url in mime.urls():
        if not url.isLocalFile():
            other.append(url.toString())
            continue
        p = Path(url.toLocalFile())
        if p.is_dir():
            folders.append(str(p))
        elif p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            images.append(str(p))
        else:
            other.append(p.name or str(p))
    if folders or images:
        return folders, images, ""
    if other:
        what = other[0] if len(other) == 1 else f"{other[0]} and {len(other) - 1} more"
        return (
            [],
            [],
            (
                f"Fovea can't use {what}: drop a folder to add it as a library, "
                "or a photo to find similar ones."
            ),
        )
    return [], [], "Drop a folder to add it as a library, or a photo to find similar ones."


class DropTarget:
    """Mixin for widgets that hand every drop to their window's `handle_drop` (grid, search field)."""

    window_: object

    def dragEnterEvent(self, e) -> None:
        e.acceptProposedAction()  # everything is accepted: what cannot be used gets an explanation

    def dragMoveEvent(self, e) -> None:
        e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        e.acceptProposedAction()
        self.window_.handle_drop(e.mimeData())
