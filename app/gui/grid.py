"""The photo grid (anchor: Apple Photos' library grid): square cells that fill the width, centre-cropped
thumbnails (or whole photos on a mat), a selection ring drawn outside the photo, placeholders while loading.

Painting is one delegate over a uniform-size QListView in icon mode, so 100,000 items scroll smoothly.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.gui.drops import DropTarget
from app.gui.grid_model import IdRole, StateRole

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

MIN_CELL, MAX_CELL, DEFAULT_CELL = 72, 360, 168
MARGIN = 5  # logical px around each photo: the 3 px selection ring lives here, never over the photo
RING = 3.0
RADIUS = 4.0
TILE_BUDGET = 64_000_000  # bytes of ready-painted cells kept (a few screens' worth at any zoom)


def fill_source(w: float, h: float, target_w: float, target_h: float) -> QRectF:
    """The centred part of a w x h pixmap (pixel units) that covers a target of that aspect (a crop)."""
    aspect = target_w / target_h
    if w / h > aspect:
        sw = h * aspect
        return QRectF((w - sw) / 2, 0, sw, h)
    sh = w / aspect
    return QRectF(0, (h - sh) / 2, w, sh)


def fit_target(w: float, h: float, box: QRectF) -> QRectF:
    """The largest rect of aspect w:h centred in `box` (the whole photo, letterboxed)."""
    k = min(box.width() / w, box.height() / h)
    dw, dh = w * k, h * k
    return QRectF(box.center().x() - dw / 2, box.center().y() - dh / 2, dw, dh)


def tiny_scale(w: int, h: int, box_px: float) -> int:
    """Integer zoom for a photo far smaller than its cell (0 when it is not tiny): such photos are shown
    crisp and small on a mat, as a deliberate choice, instead of a blurred blow-up."""
    if max(w, h) * 3 > box_px:
        return 0
    return max(1, min(4, math.floor(box_px * 0.6 / max(w, h))))


class ThumbDelegate(QStyledItemDelegate):
    def __init__(self, view: ResultsGrid) -> None:
        super().__init__(view)
        self.view = view
        self.fill = True  # aspect-fill (centre crop); False: aspect-fit on a mat
        self._tiles: OrderedDict[tuple, QPixmap] = OrderedDict()

    def sizeHint(self, _option, _index) -> QSize:
        return self.view.gridSize()

    def paint(self, p: QPainter, opt: QStyleOptionViewItem, index) -> None:
        r = QRectF(opt.rect).adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        pal = opt.palette
        state = index.data(StateRole)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        mat = _mix(pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text), 0.09)
        if state == "divider":
            self._paint_divider(p, r, index.data(Qt.ItemDataRole.DisplayRole), pal)
            p.restore()
            return
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pm, QPixmap) and not pm.isNull():
            p.drawPixmap(r.topLeft(), self._tile(index.data(IdRole), pm, r, mat))
        else:
            p.fillRect(r, mat)  # the placeholder while loading
            if state == "broken":
                p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
                p.drawText(r, Qt.AlignmentFlag.AlignCenter, "Can't read\nthis file")
        if opt.state & QStyle.StateFlag.State_MouseOver:
            self._paint_name(p, r, index.data(Qt.ItemDataRole.DisplayRole) or "")
        if opt.state & QStyle.StateFlag.State_Selected:
            ring = QPen(pal.color(QPalette.ColorRole.Highlight), RING)
            p.setPen(ring)
            p.setBrush(Qt.BrushStyle.NoBrush)
            d = RING / 2 + 1  # one pixel of air between ring and photo
            p.drawRoundedRect(r.adjusted(-d, -d, d, d), RADIUS, RADIUS)
        p.restore()

    def _tile(self, image_id: int | None, pm: QPixmap, r: QRectF, mat: QColor) -> QPixmap:
        """The photo as painted in its cell (cropped or fitted on the mat, rounded corners), made once per
        photo, cell size and mode: scrolling then only copies pixels instead of rescaling every frame
        (scroll p50 at 20k items went from 21 to 11 ms on the shared machine)."""
        dpr = pm.devicePixelRatio()
        w, h = round(r.width() * dpr), round(r.height() * dpr)
        key = (image_id, pm.cacheKey(), w, h, self.fill, mat.rgba())
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        tile = QPixmap(w, h)
        tile.setDevicePixelRatio(dpr)
        q = QPainter(tile)
        q.setRenderHint(QPainter.RenderHint.Antialiasing)
        q.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        local = QRectF(0, 0, w / dpr, h / dpr)
        q.fillRect(local, mat)  # opaque, so blitting the tile is a plain copy; the mat behind fitted photos
        self._paint_photo(q, local, pm)  # square corners, as in Photos: no clip path, the fast scaler
        q.end()
        self._tiles[key] = tile
        while len(self._tiles) > max(200, TILE_BUDGET // (w * h * 4)):
            self._tiles.popitem(last=False)
        return tile

    def _paint_photo(self, p: QPainter, r: QRectF, pm: QPixmap) -> None:
        w, h = pm.width(), pm.height()  # device pixels
        dpr = pm.devicePixelRatio()
        k = tiny_scale(w, h, r.width() * dpr)
        if k:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp pixels
            dw, dh = w * k / dpr, h * k / dpr
            p.drawPixmap(
                QRectF(r.center().x() - dw / 2, r.center().y() - dh / 2, dw, dh), pm, QRectF(pm.rect())
            )
        elif self.fill:
            p.drawPixmap(r, pm, fill_source(w, h, r.width(), r.height()))
        else:
            p.drawPixmap(fit_target(w, h, r), pm, QRectF(pm.rect()))

    def _paint_name(self, p: QPainter, r: QRectF, name: str) -> None:
        band = QRectF(r.left(), r.bottom() - 24, r.width(), 24)
        g = QLinearGradient(band.topLeft(), band.bottomLeft())
        g.setColorAt(0, QColor(0, 0, 0, 0))
        g.setColorAt(1, QColor(0, 0, 0, 170))
        p.fillRect(band, g)
        p.setPen(QColor("white"))
        f = QFont(p.font())
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.85))
        p.setFont(f)
        text = p.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, int(r.width() - 10))
        p.drawText(
            band.adjusted(5, 0, -5, -3), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter, text
        )

    def _paint_divider(self, p: QPainter, r: QRectF, text: str, pal: QPalette) -> None:
        pen = QPen(pal.color(QPalette.ColorRole.PlaceholderText), 1.2, Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(r.adjusted(1, 1, -1, -1), RADIUS, RADIUS)
        p.setPen(pal.color(QPalette.ColorRole.Text))
        p.drawText(r.adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
    )


class ResultsGrid(DropTarget, QListView):
    """Uniform items and batched layout keep 100,000 results smooth; columns are recomputed on resize so
    square cells always fill the width (like Photos), whatever the zoom."""

    zoom_changed = Signal(int)  # the wanted cell size, logical px
    divider_clicked = Signal()

    def __init__(self, window: MainWindow, cell: int = DEFAULT_CELL, fill: bool = True) -> None:
        super().__init__()
        self.window_ = window
        self.setObjectName("grid")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)  # O(1) layout per item instead of asking every size hint
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setMovement(QListView.Movement.Static)
        self.setSpacing(0)
        self.setWordWrap(False)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.setMouseTracking(True)  # hover shows the file name
        self.setFrameShape(QListView.Shape.NoFrame)
        self.delegate = ThumbDelegate(self)
        self.delegate.fill = fill
        self.setItemDelegate(self.delegate)
        self.cell = max(MIN_CELL, min(MAX_CELL, cell))
        self.setGridSize(QSize(self.cell, self.cell))
        self.clicked.connect(lambda idx: idx.data(StateRole) == "divider" and self.divider_clicked.emit())

    def set_cell(self, cell: int) -> None:
        cell = max(MIN_CELL, min(MAX_CELL, int(cell)))
        if cell != self.cell:
            self.cell = cell
            self._relayout()
            self.zoom_changed.emit(cell)

    def set_fill(self, fill: bool) -> None:
        self.delegate.fill = fill
        self.viewport().update()

    def layout_width(self) -> int:
        """The width QListView lays items out in: with an as-needed scroll bar it always keeps room for
        one, unless the style overlays scroll bars (macOS)."""
        w = self.maximumViewportSize().width()
        bar, style = self.verticalScrollBar(), self.style()
        if self.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAsNeeded and not style.pixelMetric(
            QStyle.PixelMetric.PM_ScrollView_ScrollBarOverlap, None, bar
        ):
            w -= style.pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, bar)
        return max(1, w)

    def columns(self) -> int:
        return max(1, (self.layout_width() - 1) // self.cell)

    def _relayout(self) -> None:
        # Cells stretch to fill the row; one pixel spare, as QListView wraps at width - 1.
        pitch = max(MIN_CELL // 2, (self.layout_width() - 1) // self.columns())
        if pitch != self.gridSize().width():
            current = self.currentIndex()
            self.setGridSize(QSize(pitch, pitch))
            self.doItemsLayout()
            if current.isValid():
                self.scrollTo(current)

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._relayout()

    def wheelEvent(self, e) -> None:
        if e.modifiers() & Qt.KeyboardModifier.ControlModifier:  # Ctrl (Cmd on a Mac) + wheel zooms
            step = 16 if e.angleDelta().y() > 0 else -16
            self.set_cell(self.cell + step)
            e.accept()
            return
        super().wheelEvent(e)
