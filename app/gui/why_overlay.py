"""The detail panel's "Why?" toggle: the occlusion map of why the shown photo matches the query.

The map is computed by `Library.explain_job` in a `Job` worker (seconds for a real model), with a
progress ring; a selection change cancels the job in flight and drops its result, and finished maps
are cached per (image, query, model) so toggling or coming back is instant.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from app.core.decode import open_image
from app.core.explain import heat_image
from app.core.tag_vocab import DEFAULT_TEMPLATES
from app.gui.progress_ring import ProgressRing
from app.gui.threads import thread_pool
from app.gui.workers import Job

if TYPE_CHECKING:
    from app.core.api import Library
    from app.core.contracts import JobProgress, TagInfo

CACHE_SIZE = 32  # maps kept; one is a display-sized RGB image (~3 MB at 1024 px)
DISPLAY_SIDE = 1024  # the photo is blended at this size: the map has 7-16 cells a side anyway

Key = tuple[str, str, str]  # image path, query, model id


def why_query(search_text: str, view: str, tags: Sequence[TagInfo]) -> str | None:
    """What "Why?" explains: the search being shown, or in the review queue the tag being decided
    (the best-scored tag awaiting review, in the tagger's default prompt); None when neither."""
    if search_text.strip():
        return search_text.strip()
    if view == "review":
        pending = [t for t in tags if t.status == "review"]
        return DEFAULT_TEMPLATES[0].format(pending[0].label) if pending else None
    return None


def overlay_image(path: Path, result) -> QImage:
    """The photo, reduced for display, with the map blended over it (runs in the worker)."""
    photo = open_image(path).image
    photo.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    rgb = heat_image(photo, result)
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


class WhyOverlay(QObject):
    """Owns the toggle row and the job; the panel shows `pixmap_ready` maps over its preview."""

    pixmap_ready = Signal(object)  # QPixmap of the current target's map, or None to show the plain photo

    def __init__(self, lib: Library, pool: QThreadPool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.lib = lib
        if pool is None:  # its own thread: a map takes seconds and must not hold up searches or thumbnails
            pool = thread_pool(self, max_threads=1)
        self.pool = pool
        self.cache: OrderedDict[Key, QImage] = OrderedDict()
        self.job: Job | None = None
        self._job_key: Key | None = None
        self.target: tuple[str, str] | None = None  # (path, query) of the photo shown
        self.row = QWidget()
        lay = QHBoxLayout(self.row)
        lay.setContentsMargins(0, 0, 0, 0)
        self.button = QPushButton("Why?")
        self.button.setObjectName("why")
        self.button.setCheckable(True)
        self.button.setToolTip("Show which parts of the photo make it match the query")
        self.button.setEnabled(False)
        self.button.toggled.connect(lambda _on: self._update())
        self.progress = ProgressRing()
        self.progress.setToolTip("occluded copies of the photo embedded so far")
        self.progress.setVisible(False)
        self.status = QLabel()
        self.status.setObjectName("why-status")
        for w in (self.button, self.progress):
            lay.addWidget(w)
        lay.addWidget(self.status, 1)

    def key(self) -> Key | None:
        if self.target is None or not self.lib.model_loaded:
            return None
        return (self.target[0], self.target[1], self.lib.embedder().model_id)

    def set_target(self, path: str | None, query: str | None) -> None:
        """The photo shown and the query it is explained for (None: nothing to explain)."""
        target = (path, query) if path and query else None
        self.target = target  # the same target again re-shows its cached map (the panel reset it)
        self.button.setEnabled(target is not None)
        self.button.setToolTip(
            f"Show which parts of the photo match “{query}”"
            if target
            else "Search first: Why? explains a match"
        )
        self._update()

    def _update(self) -> None:
        key = self.key() if self.button.isChecked() else None
        if self.job is not None and self._job_key != key:
            self.job.cancel()  # its result, if any arrives, no longer matches the target and is dropped
            self.job, self._job_key = None, None
            self.progress.setVisible(False)
        if key is None:
            self.status.setText(
                "" if self.target is None or self.lib.model_loaded else "the model is loading"
            )
            self.pixmap_ready.emit(None)
            return
        if key in self.cache:
            self.cache.move_to_end(key)
            self.status.setText("")
            self.pixmap_ready.emit(QPixmap.fromImage(self.cache[key]))
        elif self.job is None:
            self._start(key)

    def _start(self, key: Key) -> None:
        path, query, _model = key

        def make_gen(stop):
            result = yield from self.lib.explain_job(Path(path), query, stop)
            return None if result is None else overlay_image(Path(path), result)

        job = Job(make_gen, "Why?")
        job.signals.progress.connect(lambda p, j=job: self._on_progress(j, p))
        job.signals.result.connect(lambda img, j=job, k=key: self._on_result(j, k, img))
        job.signals.error.connect(lambda msg, j=job: self._on_error(j, msg))
        self.job, self._job_key = job, key
        self.progress.setRange(0, 0)  # busy until the first count arrives
        self.progress.setVisible(True)
        self.status.setText("explaining…")
        self.pool.start(job)

    def _on_progress(self, job: Job, p: JobProgress) -> None:
        if job is self.job and p.total:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)

    def _on_result(self, job: Job, key: Key, img: QImage | None) -> None:
        if img is not None:  # a job cancelled after its last batch still made a valid map for its key
            self.cache[key] = img
            while len(self.cache) > CACHE_SIZE:
                self.cache.popitem(last=False)
        if job is self.job:  # a stale job's result is never shown: _update shows the current key only
            self.job = self._job_key = None
            self.progress.setVisible(False)
            self._update()

    def _on_error(self, job: Job, msg: str) -> None:
        if job is self.job:
            self.job = self._job_key = None
            self.progress.setVisible(False)
            self.status.setText(msg)

    def current_image(self) -> QImage | None:
        """The shown photo's map when the toggle is on and it is ready (for the Space preview)."""
        key = self.key() if self.button.isChecked() else None
        return self.cache.get(key) if key is not None else None

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self.job = self._job_key = None
