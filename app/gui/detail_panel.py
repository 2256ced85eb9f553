"""The detail panel: large preview, metadata, tag chips with confirm/reject, caption, actions."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from app.core.contracts import ImageDetails, TagInfo


class TagChip(QWidget):
    decided = Signal(str, str)  # label, "confirmed" | "rejected"

    def __init__(
        self,
        label: str,
        score: float,
        status: str,
        parent=None,
        read_only: bool = False,
        weak_reason: str | None = None,
    ) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        colour = {"confirmed": "#2e9d4f", "rejected": "#c0392b", "review": "#c58b00"}.get(status, "gray")
        name = html.escape(label)
        name = f"<s>{name}</s>" if status == "rejected" else name
        score_text = f"{score:.2f} · " if score else ""
        weak = " · <b>weak</b>" if weak_reason else ""  # a label the model cannot read: its score is a guess
        text = QLabel(f"{name}  <span style='color:{colour}'>{score_text}{status}{weak}</span>")
        text.setObjectName(f"tag-{label}")
        if weak_reason:
            text.setToolTip(f"Weak: {weak_reason}")
        text.setTextFormat(Qt.TextFormat.RichText)
        row.addWidget(text, 1)
        for name, status_to, tip in (
            ("✓", "confirmed", "Confirm this tag"),
            ("✗", "rejected", "Reject this tag"),
        ):
            b = QPushButton(name)
            b.setObjectName(f"tag-{status_to}-{label}")
            b.setToolTip(tip)
            b.setFixedWidth(28)
            b.setEnabled(status != status_to and not read_only)
            b.clicked.connect(lambda _=False, s=status_to: self.decided.emit(label, s))
            row.addWidget(b)


class DetailPanel(QWidget):
    find_similar = Signal(int)
    reveal = Signal(str)
    open_file = Signal(str)
    tag_decided = Signal(int, str, str)  # image id, label, status
    cleared = Signal()  # no photo shown any more

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(280)
        self.read_only = False  # a library open for browsing only: tag decisions are off
        self.image_id: int | None = None
        self.path = ""
        self._pixmap: QPixmap | None = None
        self._overlay: QPixmap | None = None  # the "Why?" map, shown instead of the photo while set
        lay = QVBoxLayout(self)
        self._layout = lay
        self.preview = QLabel("Select a photo")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(240)
        # Ignored: the label must not grow to its pixmap, which is refitted to the label on resize.
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        lay.addWidget(self.preview, 3)
        self.meta = QLabel()
        self.meta.setWordWrap(True)
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.meta)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        lay.addWidget(self.caption)
        tags_title = QLabel("<b>Tags</b>")
        lay.addWidget(tags_title)
        self.tags_box = QWidget()
        self.tags_layout = QVBoxLayout(self.tags_box)
        self.tags_layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.tags_box)
        lay.addWidget(scroll, 2)
        buttons = QHBoxLayout()
        self.similar_btn = QPushButton("Find similar")
        self.reveal_btn = QPushButton("Reveal")
        self.open_btn = QPushButton("Open")
        for b in (self.similar_btn, self.reveal_btn, self.open_btn):
            b.setEnabled(False)
            buttons.addWidget(b)
        lay.addLayout(buttons)
        self.similar_btn.clicked.connect(
            lambda: self.image_id is not None and self.find_similar.emit(self.image_id)
        )
        self.reveal_btn.clicked.connect(lambda: self.reveal.emit(self.path))
        self.open_btn.clicked.connect(lambda: self.open_file.emit(self.path))

    def show_image(
        self, image_id: int, path: str, details: ImageDetails, score: float | None, preview: QPixmap | None
    ) -> None:
        """details: Library.image_details; score: the hit's score, if any; preview: the best pixmap at hand."""
        self.image_id, self.path = image_id, path
        for b in (self.similar_btn, self.reveal_btn, self.open_btn):
            b.setEnabled(True)
        self._overlay = None
        self.set_preview(preview)
        meta = {
            "taken": details.taken_at,
            "camera": details.camera,
            "size": details.size_text,
            "score": score,
        }
        name = html.escape(path.rsplit("/", 1)[-1])
        lines = [f"<b>{name}</b>", f"<span style='color:gray'>{html.escape(path)}</span>"]
        for key, title in (("taken", "Taken"), ("camera", "Camera"), ("size", "Size"), ("score", "Score")):
            value = meta.get(key)
            if value is not None and value != "":
                text = f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))
                lines.append(f"{title}: {text}")
        self.meta.setText("<br>".join(lines))
        cap = details.caption
        self.caption.setText(f"<i>“{html.escape(cap)}”</i>" if cap else "")
        self.caption.setVisible(bool(cap))
        self.set_tags(details.tags)

    def set_preview(self, pm: QPixmap | None) -> None:
        self._pixmap = pm if pm is not None and not pm.isNull() else None
        if self._pixmap is None:
            self.preview.setText("Loading preview…" if self.image_id is not None else "Select a photo")
            return
        self._fit()

    def add_row(self, row: QWidget) -> None:
        """A row under the preview (the "Why?" toggle)."""
        self._layout.insertWidget(1, row)

    def set_overlay(self, pm: QPixmap | None) -> None:
        if pm is None and self._overlay is None:
            return  # nothing shown changes: no rescale on the GUI thread
        self._overlay = pm
        self._fit()

    def _fit(self) -> None:
        pm = self._overlay or self._pixmap
        if pm is None:
            return
        dpr = self.devicePixelRatioF()
        box = self.preview.size() * dpr
        scaled = pm.scaled(
            box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        scaled.setDevicePixelRatio(dpr)
        self.preview.setPixmap(scaled)

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._fit()

    def set_tags(self, tags: Sequence[TagInfo]) -> None:
        while self.tags_layout.count():
            w = self.tags_layout.takeAt(0).widget()
            if w is not None:
                w.hide()  # gone from the screen now, deleted on the next event-loop turn
                w.deleteLater()
        if not tags:
            self.tags_layout.addWidget(QLabel("<span style='color:gray'>No tags</span>"))
        for t in tags:
            chip = TagChip(
                t.label, float(t.score or 0.0), t.status, read_only=self.read_only, weak_reason=t.weak_reason
            )
            chip.decided.connect(lambda label, status: self.tag_decided.emit(self.image_id, label, status))
            self.tags_layout.addWidget(chip)
        self.tags_layout.addStretch(1)

    def clear(self) -> None:
        self.image_id, self.path = None, ""
        self._pixmap = self._overlay = None
        self.preview.clear()
        self.preview.setText("Select a photo")
        self.meta.clear()
        self.caption.clear()
        self.set_tags([])
        for b in (self.similar_btn, self.reveal_btn, self.open_btn):
            b.setEnabled(False)
        self.cleared.emit()
