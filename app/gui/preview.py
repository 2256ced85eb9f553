"""Space-bar preview: a large view of one photo, decoded off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QSizePolicy, QVBoxLayout

from app.core.thumbnails import ensure_thumbnail
from app.gui.workers import Call


class PreviewDialog(QDialog):
    def __init__(self, path: str, cache_dir: Path, parent=None, overlay: QImage | None = None) -> None:
        """`overlay`: the photo with its "Why?" map, shown instead of the photo when the toggle is on."""
        super().__init__(parent)
        self.setWindowTitle(Path(path).name)
        self.resize(1000, 760)
        self.label = QLabel("Loading…")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        QVBoxLayout(self).addWidget(self.label)
        if overlay is not None:
            self._show(overlay)
            return
        side = round(1600 * self.devicePixelRatioF())
        call = Call(lambda: QImage(str(ensure_thumbnail(Path(path), cache_dir, side))), "preview")
        call.signals.result.connect(self._show)
        call.signals.error.connect(self.label.setText)
        QThreadPool.globalInstance().start(call)

    def _show(self, img: QImage) -> None:
        pm = QPixmap.fromImage(img)  # GUI thread
        dpr = self.devicePixelRatioF()
        pm = pm.scaled(
            self.label.size() * dpr,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        pm.setDevicePixelRatio(dpr)
        self.label.setPixmap(pm)

    def keyPressEvent(self, e) -> None:
        if e.key() in (Qt.Key.Key_Space, Qt.Key.Key_Escape):
            self.accept()
        else:
            super().keyPressEvent(e)
