"""Thumbnails: decoded in pool threads into the disk cache, turned into pixmaps on the GUI thread only."""

from __future__ import annotations

import io
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Signal
from PySide6.QtGui import QImage, QPixmap

from app.core.faults import DiskFullError
from app.core.thumbnails import ensure_thumbnail, render_thumbnail
from app.gui.threads import thread_pool


def _qimage(img) -> QImage:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return QImage.fromData(buf.getvalue(), "PNG")


class _Signals(QObject):
    ready = Signal(int, int, QImage)  # generation, image id, image (QImage is safe to build off-thread)
    failed = Signal(int, int)


class _Load(QRunnable):
    def __init__(self, signals: _Signals, generation: int, image_id: int, path: str, cache: Path, size: int):
        super().__init__()
        self.s, self.gen, self.image_id, self.path = signals, generation, image_id, path
        self.cache, self.size = cache, size

    def run(self) -> None:
        try:
            try:
                img = QImage(str(ensure_thumbnail(Path(self.path), self.cache, self.size)))
            except DiskFullError:  # a full disk costs the cache, not the picture
                img = _qimage(render_thumbnail(Path(self.path), self.size))
        except Exception:  # unreadable photo: the grid shows a placeholder
            self.s.failed.emit(self.gen, self.image_id)
            return
        if img.isNull():
            self.s.failed.emit(self.gen, self.image_id)
        else:
            self.s.ready.emit(self.gen, self.image_id, img)


class ThumbnailLoader(QObject):
    """Asynchronous, de-duplicated thumbnail requests with a bounded pixmap LRU.

    `size` is in logical pixels; files are decoded at size x devicePixelRatio and the pixmaps carry
    that ratio, so thumbnails are sharp on high-DPI screens.

    Each new result set bumps `generation`; queued work for older sets is cleared and late results
    from them are dropped, so scrolling through a fresh search never shows stale thumbnails.
    """

    loaded = Signal(int)  # image id whose pixmap is now available

    def __init__(
        self,
        cache_dir: Path,
        size: int = 256,
        capacity: int = 2000,
        dpr: float = 1.0,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.cache_dir, self.max_capacity, self.dpr = cache_dir, capacity, max(1.0, dpr)
        self._set_size(size)
        self.pool = thread_pool(self, max_threads=2)  # decoding competes with indexing for the same cores
        self.generation = 0
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._pending: set[int] = set()
        self._failed: set[int] = set()
        self._signals = _Signals()
        self._signals.ready.connect(self._on_ready)
        self._signals.failed.connect(self._on_failed)

    def _set_size(self, size: int) -> None:
        self.size = size
        self.pixel_size = round(size * self.dpr)  # the cached file's longest side, in device pixels
        # At most ~256 MB of pixmaps (3 bytes a pixel, 3:4 photos): fewer kept when they are bigger.
        self.capacity = min(self.max_capacity, max(300, 256_000_000 // (self.pixel_size**2 * 3)))

    def set_size(self, size: int, dpr: float | None = None) -> bool:
        """Decode at a new size (zoom, or a screen with another pixel ratio); True when it changed."""
        dpr = max(1.0, dpr or self.dpr)
        if size == self.size and dpr == self.dpr:
            return False
        self.dpr = dpr
        self._set_size(size)
        self._pixmaps.clear()
        self._failed.clear()
        self.new_generation()
        return True

    def new_generation(self) -> None:
        self.generation += 1
        self.pool.clear()  # drop queued loads for the previous result set
        self._pending.clear()

    def pixmap(self, image_id: int, path: str) -> QPixmap | None:
        """The cached pixmap, or None after queueing a load (the `loaded` signal follows)."""
        pm = self._pixmaps.get(image_id)
        if pm is not None:
            self._pixmaps.move_to_end(image_id)
            return pm
        if image_id not in self._pending and image_id not in self._failed:
            self._pending.add(image_id)
            self.pool.start(
                _Load(self._signals, self.generation, image_id, path, self.cache_dir, self.pixel_size)
            )
        return None

    def cached(self, image_id: int) -> QPixmap | None:
        """The pixmap if it is already loaded; never queues work."""
        return self._pixmaps.get(image_id)

    def failed(self, image_id: int) -> bool:
        return image_id in self._failed

    def _on_ready(self, generation: int, image_id: int, img: QImage) -> None:
        self._pending.discard(image_id)
        if generation != self.generation:
            return
        pm = QPixmap.fromImage(img)  # GUI thread only
        pm.setDevicePixelRatio(self.dpr)
        self._pixmaps[image_id] = pm
        while len(self._pixmaps) > self.capacity:
            self._pixmaps.popitem(last=False)
        self.loaded.emit(image_id)

    def _on_failed(self, generation: int, image_id: int) -> None:
        self._pending.discard(image_id)
        if generation == self.generation:
            self._failed.add(image_id)
            self.loaded.emit(image_id)
