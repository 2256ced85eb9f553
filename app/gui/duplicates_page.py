"""Duplicates you can judge: each group (exact copies, near copies) is a row of side-by-side photos with
size, date and dimensions; a similarity slider regroups live; "Keep this one" marks the others, and only
after a confirmation listing the files are they moved to the system Trash (never deleted), and only
files inside a library folder."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QFile, QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.core.duplicates import DuplicateGroup, plan_trash
from app.gui.pages import FlowLayout
from app.gui.thumbnails import ThumbnailLoader

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

MAX_GROUPS = 150  # rows built at once; more are counted, and appear as groups are resolved
THUMB = QSize(200, 150)  # most photos are landscape: a wide box wastes less than a square one


@dataclass(frozen=True)
class Photo:
    image_id: int
    path: Path
    size: int | None
    width: int | None
    height: int | None
    date: str


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def load_groups(win: MainWindow, threshold: float) -> tuple[list[DuplicateGroup], dict[int, Photo]]:
    """Groups and the facts shown beside each photo; runs in the read worker."""
    groups = win.lib.duplicates(threshold)
    ids = [i for g in groups[:MAX_GROUPS] for i in g.image_ids]
    photos = {}
    for r in win.lib.image_records(ids):
        date = r.taken_at or ""
        if not date:
            try:
                date = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(r.path).st_mtime)) + " (file)"
            except OSError:
                date = "missing"
        photos[r.id] = Photo(r.id, r.path, r.size, r.width, r.height, date)
    return groups, photos


class PhotoCell(QFrame):
    def __init__(self, page: DuplicatesPage, photo: Photo, largest: bool) -> None:
        super().__init__()
        self.setObjectName("dup-cell")
        self.photo = photo
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.thumb = QLabel("…")
        self.thumb.setFixedSize(THUMB)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.thumb)
        name = QLabel(
            self.fontMetrics().elidedText(photo.path.name, Qt.TextElideMode.ElideMiddle, THUMB.width())
        )
        name.setToolTip(str(photo.path))
        lay.addWidget(name)
        dims = f"{photo.width} × {photo.height}" if photo.width else "size unknown"  # noqa: RUF001
        facts = QLabel(f"{dims}{'  (largest)' if largest else ''}\n{human_size(photo.size)}\n{photo.date}")
        facts.setObjectName("dup-facts")
        lay.addWidget(facts)
        row = QHBoxLayout()
        self.keep = QPushButton("Keep this one")
        self.keep.setToolTip("Mark the other photos of this group for the Trash")
        self.trash = QCheckBox("Trash")
        self.trash.setToolTip("Chosen for the Trash (moved only after you confirm)")
        row.addWidget(self.keep)
        row.addWidget(self.trash)
        lay.addLayout(row)
        self.keep.clicked.connect(lambda: page.keep_only(photo.image_id))
        self.trash.toggled.connect(lambda on: page.choose(photo.image_id, on))

    def set_pixmap(self, pm) -> None:
        self.thumb.setPixmap(
            pm.scaled(
                self.thumb.size() * pm.devicePixelRatio(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )


class DuplicatesPage(QWidget):
    def __init__(self, win: MainWindow) -> None:
        super().__init__()
        self.win = win
        self.setObjectName("duplicates")
        self.groups: list[DuplicateGroup] = []
        self.photos: dict[int, Photo] = {}
        self.cells: dict[int, PhotoCell] = {}
        self.chosen: set[int] = set()
        self.read_only = False
        self.thumbs = ThumbnailLoader(
            win.thumbs.cache_dir, size=256, dpr=win.devicePixelRatioF(), parent=self
        )
        self.thumbs.loaded.connect(self._on_thumb)
        top = QHBoxLayout()
        self.title = QLabel("<h3>Duplicates</h3>")
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(QLabel("Similar enough:"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(80, 100)
        self.slider.setValue(95)
        self.slider.setFixedWidth(180)
        self.slider.setToolTip(
            "How alike two photos must look to be grouped as near copies (exact copies always are)"
        )
        self.slider.valueChanged.connect(self._on_slider)
        top.addWidget(self.slider)
        self.threshold_label = QLabel()
        top.addWidget(self.threshold_label)
        self.trash_btn = QPushButton("Move to Trash…")
        self.trash_btn.setEnabled(False)
        self.trash_btn.clicked.connect(self.trash_chosen)
        top.addWidget(self.trash_btn)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.rows = QVBoxLayout()
        self.rows.setSpacing(10)
        body = QWidget()
        outer = QVBoxLayout(body)
        outer.addLayout(self.rows)
        outer.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # rows wrap instead
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.summary)
        lay.addWidget(scroll, 1)
        self._timer = QTimer(self, singleShot=True, interval=150)  # regroup once the slider rests
        self._timer.timeout.connect(self.refresh)
        self._on_slider(self.slider.value(), refresh=False)

    def threshold(self) -> float:
        return self.slider.value() / 100

    def _on_slider(self, value: int, refresh: bool = True) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if refresh:
            self._timer.start()

    def refresh(self) -> None:
        t = self.threshold()
        self.win.query(lambda: load_groups(self.win, t), self._show, "duplicates")

    def _show(self, res: tuple[list[DuplicateGroup], dict[int, Photo]]) -> None:
        self.groups, self.photos = res
        self.chosen &= set(self.photos)
        while self.rows.count():
            w = self.rows.takeAt(0).widget()
            if w is not None:
                w.hide()
                w.deleteLater()
        self.cells = {}
        self.thumbs.new_generation()
        for g in self.groups[:MAX_GROUPS]:
            self.rows.addWidget(self._group_row(g))
        n_photos = sum(len(g.image_ids) for g in self.groups)
        exact = sum(g.kind == "exact" for g in self.groups)
        if self.groups:
            more = f" (the first {MAX_GROUPS} are shown)" if len(self.groups) > MAX_GROUPS else ""
            self.summary.setText(
                f"{len(self.groups)} groups{more}: {exact} of exact copies, {len(self.groups) - exact} of near copies. "
                "Choose the photos you do not need; Fovea moves them to the Trash only after you confirm."
            )
            status = f"{len(self.groups):,} groups · {n_photos:,} photos"
        else:
            self.summary.setText(
                "No duplicates at this similarity. Identical files and near-identical photos are grouped here."
            )
            status = "none at this similarity"
        if self.win.stack.currentWidget() is self:
            self.win.jobs.say(f"Duplicates — {status}")
        self._update_button()

    def _group_row(self, g: DuplicateGroup) -> QWidget:
        box = QFrame()
        box.setObjectName("dup-group")
        lay = QVBoxLayout(box)
        head = "Exact copies" if g.kind == "exact" else f"Near copies · similarity {g.score:.3f}"
        lay.addWidget(QLabel(f"<b>{head}</b> · {len(g.image_ids)} photos"))
        cells = QWidget()
        row = FlowLayout(cells)
        row.setContentsMargins(0, 0, 0, 0)
        present = [self.photos[i] for i in g.image_ids if i in self.photos]
        pixels = [(p.width or 0) * (p.height or 0) for p in present]
        biggest = max(pixels, default=0)
        for p, px in zip(present, pixels, strict=True):
            cell = PhotoCell(self, p, largest=px == biggest and pixels.count(biggest) == 1)
            cell.trash.setChecked(p.image_id in self.chosen)
            self.cells[p.image_id] = cell
            pm = self.thumbs.pixmap(p.image_id, str(p.path))
            if pm is not None:
                cell.set_pixmap(pm)
            row.addWidget(cell)
        lay.addWidget(cells)
        return box

    def _on_thumb(self, image_id: int) -> None:
        cell, pm = self.cells.get(image_id), self.thumbs.cached(image_id)
        if cell is not None:
            if pm is not None:
                cell.set_pixmap(pm)
            else:
                cell.thumb.setText("Can't read")

    def keep_only(self, image_id: int) -> None:
        group = next((g for g in self.groups if image_id in g.image_ids), None)
        if group is None:
            return
        for i in group.image_ids:
            if i in self.cells:
                self.cells[i].trash.setChecked(i != image_id)  # toggled -> choose()

    def choose(self, image_id: int, on: bool) -> None:
        (self.chosen.add if on else self.chosen.discard)(image_id)
        self._update_button()

    def _update_button(self) -> None:
        n = len(self.chosen)
        self.trash_btn.setEnabled(n > 0 and not self.read_only)
        self.trash_btn.setText(f"Move {n} to Trash…" if n else "Move to Trash…")

    def confirm(self, paths: list[Path], refused: list[tuple[Path, str]]) -> bool:
        """The confirmation that lists every file; nothing moves without it."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Move to Trash")
        box.setText(f"Move {len(paths)} photo{'s' if len(paths) != 1 else ''} to the Trash?")
        shown = "\n".join(str(p) for p in paths[:12]) + (
            f"\n… and {len(paths) - 12} more" if len(paths) > 12 else ""
        )
        skipped = "".join(f"\nNot moved: {p.name}: {why}" for p, why in refused)
        box.setInformativeText(f"{shown}{skipped}\n\nYou can put them back from the Trash.")
        box.setDetailedText("\n".join(str(p) for p in paths))
        ok = box.addButton("Move to Trash", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is ok

    def trash_chosen(self) -> None:
        """Check the chosen files against the library folders (read in the read worker), confirm, move."""
        lib = self.win.lib
        self.win.call(self.win.side, lambda: [x.path for x in lib.libraries()], self._trash_within, "trash")

    def _trash_within(self, roots: list[Path]) -> None:
        plan = plan_trash(self.groups, self.chosen, roots)
        if not plan.move:
            why = "; ".join(f"{p.name}: {r}" for p, r in plan.refused) or "nothing chosen"
            self.win.notices.show_error("trash", f"Nothing was moved to the Trash ({why}).")
            return
        if not self.confirm([p for _, p in plan.move], plan.refused):
            return
        moved, failed = [], []
        for image_id, path in plan.move:
            f = QFile(str(path))
            (moved if f.moveToTrash() else failed).append((image_id, path, f.errorString()))
        if failed:
            names = ", ".join(p.name for _, p, _ in failed)
            self.win.notices.show_error(
                "trash", f"Could not move {len(failed)} to the Trash ({names}); they are unchanged."
            )
        self.chosen -= {i for i, _, _ in moved}
        ids = [i for i, _, _ in moved]
        self.win.notice(f"Moved {len(moved)} photo{'s' if len(moved) != 1 else ''} to the Trash.")
        self.win.call(
            self.win.writes,
            lambda: self.win.lib.forget_images(ids),
            lambda _r: (self.win.refresh_sidebar(), self.refresh()),
            "forget",
        )
