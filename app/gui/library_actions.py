"""The window's library side: adding folders, the demo, jobs finishing, model changes, tag decisions.

A mixin of MainWindow (kept apart to keep files small); writes go through the single write worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.contracts import JobKind, JobProgress, TagSettings
from app.core.embed_engine import EmbedEngine
from app.core.settings import Settings


def tag_settings() -> TagSettings:
    """The tagging rule from Preferences (the CLI reads the same file when no flag overrides it)."""
    s = Settings.load()
    return TagSettings(s.min_score, s.min_margin)


def _icloud() -> bool:
    """Read iCloud files that are not on this Mac (off unless set: reading one downloads it)."""
    return Settings.load().download_icloud


def _engine() -> EmbedEngine | None:
    """The Ray engine when Preferences name a cluster (index jobs embed there; this app still stores)."""
    s = Settings.load()
    if not s.cluster_address.strip():
        return None
    from app.core.cluster import ClusterOptions, RayEngine

    return RayEngine(ClusterOptions(s.cluster_address.strip(), backend=s.backend))


class LibraryActions:
    def choose_folder(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        d = QFileDialog.getExistingDirectory(self, "Add a folder of photos")
        if d:
            self.add_folders([d])

    def add_folders(self, folders: list[str]) -> None:
        """Record the folders as libraries (a write, in the write worker), then index them in the background."""

        def add() -> list[str]:
            for f in folders:
                self.lib.add_root(f)
            return folders

        def then(added: list[str]) -> None:
            self.refresh_sidebar()
            if not self.jobs.start(
                lambda stop: self.lib.index_job(
                    [Path(f) for f in added], stop, download_icloud=_icloud(), engine=_engine()
                ),
                JobKind.INDEX,
            ):
                self._pending_index = True

        self.call(self.writes, add, then, "add library")

    def open_demo(self) -> None:
        """Write, index and tag the demo library: the same job as `fovea demo`."""
        settings = tag_settings()
        if self.jobs.start(lambda stop: self.lib.demo_job(settings, stop), JobKind.DEMO):
            self.refresh_sidebar()

    def reindex_all(self) -> None:
        self.jobs.start(
            lambda stop: self.lib.index_job(
                None, should_stop=stop, download_icloud=_icloud(), engine=_engine()
            ),
            JobKind.INDEX,
        )

    def tag_all(self) -> None:
        settings = tag_settings()
        self.jobs.start(lambda stop: self.lib.tag_job(settings, should_stop=stop), JobKind.TAG)

    def caption_all(self) -> None:
        self.jobs.start(lambda stop: self.lib.caption_job(should_stop=stop), JobKind.CAPTION)

    def _on_job_progress(self, kind: JobKind, _p: JobProgress) -> None:
        if kind in (JobKind.INDEX, JobKind.DEMO) and not self._sidebar_timer.isActive():
            # At most once a second: counts, and new photos in the shown view; soon after the first batch
            # when the grid is still empty, so a dropped folder shows its first photos at once.
            self._sidebar_timer.setInterval(1000 if self.model.items else 100)
            self._sidebar_timer.start()

    def _live_refresh(self) -> None:
        self.refresh_sidebar()
        untouched = self.grid.currentIndex().row() <= 0 and self.grid.verticalScrollBar().value() == 0
        if self.jobs.running and not self.search.text() and self._view[0] == "all" and untouched:
            self.show_view(*self._view)  # the user has not started browsing: show photos as they arrive

    def _on_job_finished(self, kind: JobKind, result: Any) -> None:
        self.refresh_sidebar()
        if kind is JobKind.PULL and result is not None:
            self.use_model(str(result))
            return
        if getattr(self, "_pending_index", False):
            self._pending_index = False
            self.reindex_all()
        elif kind in (JobKind.INDEX, JobKind.DEMO) and result is not None and Settings.load().captions:
            self.caption_all()  # Preferences ▸ "Caption photos in the background": new photos get captions
        if self.search.text().strip():
            self.run_search()
        elif self._view[0] != "duplicates" and (
            self.stack.currentWidget() in (self.grid, self.empty) or self._view[0] in ("errors", "tags")
        ):
            self.show_view(*self._view)

    def use_model(self, model: str) -> None:
        """Make `model` (a registry name or folder) the current one and index with it."""
        s = Settings.load()
        s.model = model
        s.save()
        self.lib.set_model(model, s.backend)
        self.load_model()
        self.reindex_all()

    def decide_tag(self, image_id: int, label: str, status: str) -> None:
        """Confirm or reject one tag (a write, in the write worker); the panel and the queue update after."""

        shown = [it.image_id for it in self.model.photos()]

        def show_tags(d: Any) -> None:
            if d is not None and self.detail.image_id == image_id:
                self.detail.set_tags(d.tags)

        def done(_res: Any) -> None:
            if self.detail.image_id == image_id:
                self.call(self.reads, lambda: self.lib.image_details(image_id), show_tags, "details")
            self.refresh_sidebar()
            if self._view[0] == "review" and not self.search.text():
                self.show_view(*self._view, keep=(image_id, shown))  # the selection moves to the next photo

        self.call(self.writes, lambda: self.lib.decide_tag(image_id, label, status), done, "tag")
