"""Fovea's main window: sidebar, search field, photo grid, detail panel, error bars and a status bar.

Every read (model loading, searches, browsing, details, the error list, tag counts) runs in the read
worker, every write in the write worker, jobs in the job pool; the GUI thread only paints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, QTimer
from PySide6.QtWidgets import QLabel, QMainWindow, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from app.core.api import Library
from app.core.contracts import LibrarySummary
from app.core.demo import DEMO_MODEL_WARNING
from app.core.settings import Settings
from app.gui import quit_guard
from app.gui.actions import build_menus, build_toolbar, open_path, open_preferences
from app.gui.detail_panel import DetailPanel
from app.gui.drops import classify_drop
from app.gui.duplicates_page import DuplicatesPage
from app.gui.grid import ResultsGrid
from app.gui.grid_model import IdRole, PathRole, ResultsModel, ScoreRole
from app.gui.jobs import JobBar
from app.gui.library_actions import LibraryActions
from app.gui.mac_manners import PixelRatioWatcher
from app.gui.notices import Notices
from app.gui.pages import EmptyPage, ErrorsPage, TagsPage
from app.gui.sidebar import Sidebar
from app.gui.threads import thread_pool
from app.gui.thumbnails import ThumbnailLoader
from app.gui.views import Views
from app.gui.why_overlay import WhyOverlay, why_query
from app.gui.workers import Call


def thumb_size(cell: int) -> int:
    """Decode size (longest side) for a cell: 1.5x so a 3:2 photo still covers the square when cropped,
    in steps of 64 so zooming re-decodes only now and then."""
    return min(576, -(-int(cell * 1.5) // 64) * 64)


class MainWindow(Views, LibraryActions, QMainWindow):
    def __init__(self, lib: Library, thumb_cache: Path, load_model: bool = True) -> None:
        super().__init__()
        self.lib = lib
        self.setWindowTitle("Fovea")
        self.resize(1280, 820)
        self.setAcceptDrops(True)
        # One thread each, so queries (and writes) run in the order they were asked for.
        self.reads, self.writes, self.side = (thread_pool(self, max_threads=1) for _ in range(3))
        self.job_pool = thread_pool(self)
        self._seq = 0  # grid queries: only the newest one's result is shown
        self._closed = False
        self._current: int | None = None  # the photo whose details were asked for last
        self.libs: list = []  # the libraries as the sidebar last read them (LibrarySummary)
        self._view: tuple[str, str | None, str | None] = ("all", None, None)
        self._sidebar_busy = self._sidebar_again = False
        self.settings = Settings.load()
        self._save_timer = QTimer(
            self, singleShot=True, interval=400
        )  # zooming: one write after the last step
        self._save_timer.timeout.connect(self._write_settings)

        dpr = self.devicePixelRatioF()
        self.thumbs = ThumbnailLoader(
            thumb_cache, size=thumb_size(self.settings.grid_cell), dpr=dpr, parent=self
        )
        self.previews = ThumbnailLoader(thumb_cache, size=480, dpr=dpr, capacity=48, parent=self)
        self._dpr_watcher = PixelRatioWatcher(self, self.on_pixel_ratio_changed)
        self.previews.loaded.connect(self._on_preview)
        self.model = ResultsModel(self.thumbs, self)
        self.search, self.zoom = build_toolbar(self)
        self._build_central()
        self.jobs = JobBar(self.statusBar(), self.job_pool, self)
        self.jobs.finished.connect(self._on_job_finished)
        self.jobs.progressed.connect(self._on_job_progress)
        self.jobs.failed.connect(
            lambda name, why, retry: self.notices.show_error(name, f"{name} failed: {why}", retry)
        )
        build_menus(self)
        self.search_timer = QTimer(self, singleShot=True, interval=180)  # debounce typing
        self.search_timer.timeout.connect(self.run_search)
        self.search.textEdited.connect(self._on_search_edited)
        self.search.returnPressed.connect(self.run_search)
        self._sidebar_timer = QTimer(self, singleShot=True, interval=1000)  # live counts while indexing
        self._sidebar_timer.timeout.connect(self._live_refresh)
        self.refresh_sidebar()
        self.show_view("all")
        if lib.read_only:
            self.apply_read_only()
        if lib.upgrade_note():  # the window says what an upgrade did and where the old file is
            self.notice(lib.upgrade_note()[0].upper() + lib.upgrade_note()[1:] + ".", sticky=True)
        if load_model:
            self.load_model()

    def _build_central(self) -> None:
        self.sidebar = Sidebar()
        self.sidebar.view_selected.connect(lambda v: self.show_view(v, clear_search=True))
        self.sidebar.library_selected.connect(lambda p: self.show_view("all", folder=p, clear_search=True))
        self.sidebar.folders_dropped.connect(self.add_folders)
        self.sidebar.other_dropped.connect(self.notice)
        self.grid = ResultsGrid(self, self.settings.grid_cell, fill=not self.settings.grid_fit)
        self.grid.setModel(self.model)
        self.grid.selectionModel().currentChanged.connect(self._on_current)
        self.grid.activated.connect(lambda idx: idx.data(PathRole) and open_path(idx.data(PathRole)))
        self.grid.divider_clicked.connect(self.toggle_weak)
        self.grid.zoom_changed.connect(self._on_zoom)
        self.empty = EmptyPage()
        self.empty.add_folder.connect(lambda: self.choose_folder())
        self.empty.open_demo.connect(lambda: self.open_demo())
        self.errors_page = ErrorsPage()
        self.tags_page = TagsPage()
        self.tags_page.tag_chosen.connect(lambda t: self.show_view("all", tag=t))
        self.dups_page = DuplicatesPage(self)
        self.stack = QStackedWidget()
        for w in (self.grid, self.empty, self.errors_page, self.tags_page, self.dups_page):
            self.stack.addWidget(w)
        self.notices = Notices()
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        # The demo model on real photos: a banner of its own that stays until the model or libraries change.
        self.demo_banner = QLabel(
            f"{DEMO_MODEL_WARNING} <a href='models'>Get a real model…</a> (Preferences ▸ Model: "
            "pick one, Download and Convert)"
        )
        self.demo_banner.setObjectName("banner")
        self.demo_banner.setProperty("kind", "weak")
        self.demo_banner.setWordWrap(True)
        self.demo_banner.setVisible(False)
        self.demo_banner.linkActivated.connect(lambda _link: open_preferences(self))
        self._libs: list[LibrarySummary] = []
        self._banner_timer = QTimer(self, singleShot=True, interval=7000)
        self._banner_timer.timeout.connect(lambda: self.banner.setVisible(False))
        center = QWidget()
        cl = QVBoxLayout(center)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(4)
        cl.addWidget(self.demo_banner)
        cl.addWidget(self.notices)
        cl.addWidget(self.banner)
        cl.addWidget(self.stack, 1)
        self.detail = DetailPanel()
        self.detail.find_similar.connect(self.find_similar)
        self.detail.tag_decided.connect(self.decide_tag)
        self.why = WhyOverlay(self.lib, parent=self)
        self.detail.add_row(self.why.row)
        self.why.pixmap_ready.connect(self.detail.set_overlay)
        self.detail.cleared.connect(lambda: self.why.set_target(None, None))
        split = QSplitter()
        split.setChildrenCollapsible(False)
        for w in (self.sidebar, center, self.detail):
            split.addWidget(w)
        split.setStretchFactor(1, 1)
        split.setSizes([250, 720, 330])
        self.setCentralWidget(split)

    def on_pixel_ratio_changed(self, dpr: float) -> None:
        """A screen with another pixel ratio: thumbnails and the preview are decoded again to match it."""
        if any([loader.set_size(loader.size, dpr) for loader in (self.thumbs, self.previews)]):
            self.grid.viewport().update()  # repainting asks for the pixmaps, which queues the new loads

    # ---- background calls ---------------------------------------------------------------------
    def call(self, pool: QThreadPool, fn, on_result, name: str, on_error=None) -> Call:
        c = Call(fn, name)
        # After the window closed (the library may be closed too) late results and errors are dropped.
        c.signals.result.connect(lambda r: self._closed or on_result(r))
        c.signals.error.connect(lambda m: self._closed or (on_error or self.notice)(m))
        pool.start(c)
        return c

    def query(self, fn, on_result, name: str) -> None:
        """A grid query in the read worker; a result arriving after a newer query is dropped."""
        self._seq += 1
        seq = self._seq

        def deliver(res: Any, s: int = seq) -> None:
            if s == self._seq:
                on_result(res)

        self.call(self.reads, fn, deliver, name, on_error=lambda m, s=seq: s == self._seq and self.notice(m))

    def load_model(self) -> None:
        """Open the embedder in the read worker; searches queued behind it wait for it."""
        if self.lib.model_loaded:
            return
        self.jobs.tell("Loading the model…")
        self.call(
            self.reads,
            self.lib.embedder,
            lambda e: (
                self.jobs.tell(f"Model ready: {e.model_id}"),
                self.notices.dismiss("model"),
                self.update_demo_banner(),
            ),
            "model",
            on_error=lambda m: self.notices.show_error(
                "model", f"No model could be opened ({m}). Choose one in Preferences.", self.load_model
            ),
        )

    def update_demo_banner(self) -> None:
        """Show the demo-model banner while the demo model is open on anything but demo scenes."""
        roots = [lib.path for lib in self._libs]
        self.demo_banner.setVisible(self.lib.demo_notice_needed(roots=roots))

    def apply_read_only(self) -> None:
        """Browse and search only: every control that would write is off, and the window says why."""
        for w in (*self.write_widgets, self.empty.add_btn, self.empty.demo_btn, self.dups_page.trash_btn):
            w.setEnabled(False)
        self.dups_page.read_only = True
        self.detail.read_only = True
        self.notices.show_error(
            "read-only",
            f"Read-only: {self.lib.db} is open for browsing and searching; adding folders, indexing, "
            "tagging and moving to the Trash are off.",
        )

    # ---- zoom ----------------------------------------------------------------------------------
    def zoom_by(self, step: int) -> None:
        self.grid.set_cell(self.grid.cell + step)

    def _on_zoom(self, cell: int) -> None:
        self.zoom.blockSignals(True)
        self.zoom.setValue(cell)
        self.zoom.blockSignals(False)
        if self.thumbs.set_size(thumb_size(cell), self.devicePixelRatioF()):
            self.grid.viewport().update()
        self.settings.grid_cell = cell
        self._save_timer.start()

    def set_fit(self, fit: bool) -> None:
        self.grid.set_fill(not fit)
        self.settings.grid_fit = fit
        self._save_timer.start()

    def _write_settings(self) -> None:
        s = Settings.load()  # Preferences may have changed other fields since we loaded
        s.grid_cell, s.grid_fit = self.settings.grid_cell, self.settings.grid_fit
        s.save()

    # ---- selection -----------------------------------------------------------------------------
    def _on_current(self, current, _previous) -> None:
        if not current.isValid() or not current.data(PathRole):
            return
        image_id, path, score = current.data(IdRole), current.data(PathRole), current.data(ScoreRole)
        self._current = image_id

        def show(details) -> None:
            if details is None or self._current != image_id:  # gone, or the person moved on meanwhile
                return
            big = self.previews.pixmap(image_id, path)
            self.detail.show_image(image_id, path, details, score, big or self.thumbs.cached(image_id))
            self.why.set_target(path, why_query(self.search.text(), self._view[0], details.tags))

        self.call(self.reads, lambda: self.lib.image_details(image_id), show, "details")

    def _on_preview(self, image_id: int) -> None:
        if image_id == self.detail.image_id:
            self.detail.set_preview(self.previews.cached(image_id))

    # ---- drops ---------------------------------------------------------------------------------
    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls() or e.mimeData().hasText():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        self.handle_drop(e.mimeData())
        e.acceptProposedAction()

    def handle_drop(self, mime) -> None:
        """Folders become libraries; an image runs a similar-image search; anything else is explained."""
        folders, images, why = classify_drop(mime)
        if folders:
            self.add_folders(folders)
        elif images:
            self.search.setText(images[0])
            self.find_similar(images[0])
        if why:
            self.notice(why)

    def notice(self, text: str, sticky: bool = False) -> None:
        """A passing message above the grid (a drop that cannot be used, a failed read)."""
        self._banner("info", text)
        self.banner.setVisible(True)
        self._banner_timer.stop() if sticky else self._banner_timer.start()

    def _banner(self, kind: str, text: str) -> None:
        self.banner.setProperty("kind", kind)
        self.banner.style().polish(self.banner)  # the style sheet selects on the property
        self.banner.setText(text)

    def closeEvent(self, e) -> None:
        if not quit_guard.may_close(self, e):  # a job runs: ask, stop it after its batch, close after
            return
        self._seq += 1  # grid results still on their way are dropped
        self._closed = True
        if self.jobs.job:
            self.jobs.job.cancel()
        self.why.cancel()
        if self._save_timer.isActive():
            self._save_timer.stop()
            self._write_settings()
        pools = (self.thumbs.pool, self.previews.pool, self.reads, self.side)
        for pool in pools:
            pool.clear()
        # A read still running holds its thread's connection: the Library may only close after it ends
        # (closing a connection under a running statement can crash SQLite's module).
        for pool in (*pools, self.writes):  # queued writes (tag decisions) still land
            pool.waitForDone(5000)
        super().closeEvent(e)

    def keyPressEvent(self, e) -> None:
        if e.key() == Qt.Key.Key_Escape and self.search.text():
            self.clear_search()
            return
        super().keyPressEvent(e)
