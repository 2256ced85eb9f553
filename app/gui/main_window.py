"""Fovea's main window: sidebar, search field, results grid, detail panel and a job status bar.

Everything slow (model loading, searches, browsing, writes, jobs) runs in pool threads; the GUI
thread only reads small rows (one image's details, the error list, tag counts) and paints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QThreadPool, QTimer
from PySide6.QtWidgets import QLabel, QListView, QMainWindow, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from app.core.api import Library
from app.core.contracts import Filters, LibrarySummary, ViewCounts
from app.gui.actions import build_menus, build_toolbar, open_path
from app.gui.detail_panel import DetailPanel
from app.gui.drops import DropTarget, classify_drop
from app.gui.grid_model import GridItem, IdRole, PathRole, ResultsModel
from app.gui.jobs import JobBar
from app.gui.library_actions import LibraryActions
from app.gui.pages import EmptyPage, ErrorsPage, TagsPage
from app.gui.sidebar import Sidebar
from app.gui.thumbnails import ThumbnailLoader
from app.gui.workers import Call

EMPTY_VIEWS = {
    "all": ("No photos yet", "Indexing adds them here as it goes."),
    "review": ("Nothing to review", "Tags the tagger was unsure about appear here (Library ▸ Tag Photos)."),
    "duplicates": ("No duplicates found", "Identical files and near-identical photos are grouped here."),
}


class ResultsGrid(DropTarget, QListView):
    """The thumbnail grid: uniform items and batched layout keep 100,000 results smooth."""

    def __init__(self, window: MainWindow, icon: int) -> None:
        super().__init__()
        self.window_ = window
        self.setObjectName("grid")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)  # O(1) layout per item instead of asking every size hint
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(icon, icon))
        self.setGridSize(QSize(icon + 20, icon + 34))
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)


class MainWindow(LibraryActions, QMainWindow):
    def __init__(self, lib: Library, thumb_cache: Path, load_model: bool = True) -> None:
        super().__init__()
        self.lib = lib
        self.setWindowTitle("Fovea")
        self.resize(1280, 820)
        self.setAcceptDrops(True)
        # One thread each, so queries (and writes) run in the order they were asked for.
        self.reads, self.writes, self.side = QThreadPool(self), QThreadPool(self), QThreadPool(self)
        for pool in (self.reads, self.writes, self.side):
            pool.setMaxThreadCount(1)
        self.job_pool = QThreadPool(self)
        self._seq = 0  # grid queries: only the newest one's result is shown
        self._view: tuple[str, str | None, str | None] = ("all", None, None)
        self._sidebar_busy = self._sidebar_again = False

        dpr = self.devicePixelRatioF()
        self.thumbs = ThumbnailLoader(thumb_cache, size=160, dpr=dpr, parent=self)
        self.previews = ThumbnailLoader(thumb_cache, size=480, dpr=dpr, capacity=48, parent=self)
        self.previews.loaded.connect(self._on_preview)
        self.model = ResultsModel(self.thumbs, self)
        self.search = build_toolbar(self)
        self._build_central()
        self.jobs = JobBar(self.statusBar(), self.job_pool, self)
        self.jobs.finished.connect(self._on_job_finished)
        self.jobs.progressed.connect(self._on_job_progress)
        build_menus(self)
        self.search_timer = QTimer(self, singleShot=True, interval=180)  # debounce typing
        self.search_timer.timeout.connect(self.run_search)
        self.search.textEdited.connect(lambda _t: self.search_timer.start())
        self.search.returnPressed.connect(self.run_search)
        self._sidebar_timer = QTimer(self, singleShot=True, interval=1000)  # live counts while indexing
        self._sidebar_timer.timeout.connect(self._live_refresh)
        self.refresh_sidebar()
        self.show_view("all")
        if load_model:
            self.load_model()

    def _build_central(self) -> None:
        self.sidebar = Sidebar()
        self.sidebar.view_selected.connect(lambda v: self.show_view(v, clear_search=True))
        self.sidebar.library_selected.connect(lambda p: self.show_view("all", folder=p, clear_search=True))
        self.sidebar.folders_dropped.connect(self.add_folders)
        self.sidebar.other_dropped.connect(self.notice)
        self.grid = ResultsGrid(self, self.thumbs.size)
        self.grid.setModel(self.model)
        self.grid.selectionModel().currentChanged.connect(self._on_current)
        self.grid.doubleClicked.connect(lambda idx: open_path(idx.data(PathRole)))
        self.empty = EmptyPage()
        self.empty.add_folder.connect(lambda: self.choose_folder())
        self.empty.open_demo.connect(lambda: self.open_demo())
        self.errors_page = ErrorsPage()
        self.tags_page = TagsPage()
        self.tags_page.tag_chosen.connect(lambda t: self.show_view("all", tag=t))
        self.stack = QStackedWidget()
        for w in (self.grid, self.empty, self.errors_page, self.tags_page):
            self.stack.addWidget(w)
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self._banner_timer = QTimer(self, singleShot=True, interval=7000)
        self._banner_timer.timeout.connect(lambda: self.banner.setVisible(False))
        center = QWidget()
        cl = QVBoxLayout(center)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(4)
        cl.addWidget(self.banner)
        cl.addWidget(self.stack, 1)
        self.detail = DetailPanel()
        self.detail.find_similar.connect(self.find_similar)
        self.detail.tag_decided.connect(self.decide_tag)
        split = QSplitter()
        split.setChildrenCollapsible(False)
        for w in (self.sidebar, center, self.detail):
            split.addWidget(w)
        split.setStretchFactor(1, 1)
        split.setSizes([270, 700, 330])
        self.setCentralWidget(split)

    # ---- background calls ---------------------------------------------------------------------
    def call(self, pool: QThreadPool, fn, on_result, name: str, on_error=None) -> Call:
        c = Call(fn, name)
        c.signals.result.connect(on_result)
        c.signals.error.connect(on_error or self.notice)
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
        self.jobs.say("Loading the model…")
        self.call(
            self.reads,
            self.lib.embedder,
            lambda e: self.jobs.say(f"Model ready: {e.model_id}"),
            "model",
            on_error=lambda m: self.notice(
                f"No model could be opened ({m}). Choose one in Preferences.", sticky=True
            ),
        )

    # ---- views ---------------------------------------------------------------------------------
    def refresh_sidebar(self) -> None:
        """Library counts and states and view counts, read in a worker (counts scan big tables)."""
        if self._sidebar_busy:
            self._sidebar_again = True
            return
        self._sidebar_busy = True
        lib = self.lib
        self.call(self.side, lambda: (lib.libraries(), lib.view_counts()), self._apply_sidebar, "sidebar")

    def _apply_sidebar(self, res: tuple[list[LibrarySummary], ViewCounts]) -> None:
        libs, counts = res
        self._sidebar_busy = False
        self.sidebar.set_libraries(libs)
        for key in ("all", "review", "errors"):
            self.sidebar.set_view_count(key, getattr(counts, key))
        if self._sidebar_again:
            self._sidebar_again = False
            self.refresh_sidebar()

    def show_view(
        self, view: str, folder: str | None = None, tag: str | None = None, clear_search: bool = False
    ) -> None:
        self._view = (view, folder, tag)
        if clear_search and self.search.text():
            self.search.clear()
        self.banner.setVisible(False)
        if view == "errors":
            self._seq += 1  # a grid query still on its way must not switch the page back
            self.errors_page.set_rows(self.lib.errors(limit=10_000))
            self.stack.setCurrentWidget(self.errors_page)
            self.detail.clear()
            return
        if view == "tags":
            self._seq += 1
            self.tags_page.set_counts(self.lib.tag_counts().by_label)
            self.stack.setCurrentWidget(self.tags_page)
            return
        title = f"Tag: {tag}" if tag else Path(folder).name if folder else None
        self.query(
            lambda: self.lib.browse(view, folder=folder, tag=tag),
            lambda items: self._show_browse(view, items, title),
            view,
        )

    def _show_browse(self, view: str, items: list[tuple[int, str]], title: str | None) -> None:
        self.set_items([GridItem(i, p) for i, p in items])
        if items and not self.jobs.running:  # a running job's progress keeps the status line
            self.jobs.say(f"{title + ' — ' if title else ''}{len(items):,} photos")
        elif not self.model.items:
            self.show_empty(*EMPTY_VIEWS.get(view, EMPTY_VIEWS["all"]))

    def set_items(self, items: list[GridItem]) -> None:
        self.model.set_items(items)
        if items:
            self.stack.setCurrentWidget(self.grid)
            self.grid.setCurrentIndex(self.model.index(0))
            self.grid.scrollToTop()
        else:
            self.detail.clear()
            self.show_empty(*EMPTY_VIEWS["all"])

    def show_empty(self, title: str, body: str = "") -> None:
        if self.sidebar.library_count() == 0 and not self.jobs.running and not self.search.text():
            self.empty.invite()
        else:
            self.empty.explain(title, body)
        self.stack.setCurrentWidget(self.empty)

    def _on_current(self, current, _previous) -> None:
        if not current.isValid():
            return
        image_id, path = current.data(IdRole), current.data(PathRole)
        details = self.lib.image_details(image_id)  # a handful of indexed rows: well under a ms
        if details is None:
            return
        score = current.data(Qt.ItemDataRole.UserRole + 3)
        big = self.previews.pixmap(image_id, path)
        self.detail.show_image(image_id, path, details, score, big or self.thumbs.cached(image_id))

    def _on_preview(self, image_id: int) -> None:
        if image_id == self.detail.image_id:
            self.detail.set_preview(self.previews.cached(image_id))

    # ---- search ------------------------------------------------------------------------------
    def run_search(self) -> None:
        self.search_timer.stop()
        text = self.search.text().strip()
        if not text:
            view, folder, tag = self._view
            self.show_view(view, folder, tag)
            return
        _view, folder, tag = self._view
        flt = Filters(folder=folder, tag=tag)  # a search runs inside the library or tag being shown
        self.query(lambda: self.lib.search(text, flt), lambda r: self._show_results(r, f"“{text}”"), "search")

    def find_similar(self, image: int | str) -> None:
        what = Path(image).name if isinstance(image, str) else "this photo"
        self.query(
            lambda: self.lib.similar(image), lambda r: self._show_results(r, f"like {what}"), "similar"
        )

    def _show_results(self, result, what: str) -> None:
        self.set_items([GridItem(h.image_id, str(h.path), h.score, h.weak) for h in result.hits])
        if not result.hits:
            self.show_empty(f"No photos match {what}", "Try other words, or index more folders.")
        self._banner("weak", f"No strong matches for {what} — these are the closest photos.")
        self.banner.setVisible(bool(result.hits) and result.no_strong_match)
        self.jobs.say(f"{len(result.hits)} results for {what}")

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
        self._banner("info", text)
        self.banner.setVisible(True)
        self.jobs.say(text.splitlines()[0] if text else "")
        self._banner_timer.stop() if sticky else self._banner_timer.start()

    def _banner(self, kind: str, text: str) -> None:
        self.banner.setProperty("kind", kind)
        self.banner.style().polish(self.banner)  # the style sheet selects on the property
        self.banner.setText(text)

    def closeEvent(self, e) -> None:
        if self.jobs.job:
            self.jobs.job.cancel()
        for pool in (self.thumbs.pool, self.previews.pool, self.reads, self.side):
            pool.clear()
        super().closeEvent(e)
