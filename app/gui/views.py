"""What the centre of the window shows, and the two lines that describe it: the sidebar's selection and the
status bar's left text are set here, after every view change, and nowhere else.

A mixin of MainWindow (kept apart to keep files small).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.contracts import Filters, LibrarySummary, ViewCounts
from app.gui.grid_model import GridItem, divider

VIEW_TITLES = {
    "all": "All photos",
    "review": "Review queue",
    "tags": "Tags",
    "duplicates": "Duplicates",
    "errors": "Errors",
}
EMPTY_VIEWS = {
    "all": ("No photos yet", "Indexing adds them here as it goes."),
    "review": ("Nothing to review", "Tags the tagger was unsure about appear here (Library ▸ Tag Photos)."),
    "errors": ("No errors", "Every file in your libraries could be read."),
}


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 'es' if word.endswith(('ch', 's')) else 's'}"


def stable_order(old_ids: list[int], items: list[GridItem]) -> list[GridItem]:
    """`items` with the ones already shown kept in their old order (new ones after): deciding a tag in
    the review queue must not reshuffle the queue under the person's eyes."""
    pos = {i: n for n, i in enumerate(old_ids)}
    return sorted(items, key=lambda it: pos.get(it.image_id, len(pos)))


def next_row(old_ids: list[int], decided: int, items: list[GridItem]) -> int:
    """Where the selection goes after `decided` was reviewed: itself if still listed, else the photo that
    followed it (or, at the end, the one before it)."""
    rows = {it.image_id: n for n, it in enumerate(items)}
    if decided in rows or decided not in old_ids:
        return rows.get(decided, 0)
    at = old_ids.index(decided)
    for i in old_ids[at + 1 :] + old_ids[:at][::-1]:
        if i in rows:
            return rows[i]
    return 0


@dataclass
class Results:
    """A search's hits split for display: strong ones, then weak ones behind a divider."""

    what: str
    strong: list[GridItem] = field(default_factory=list)
    weak: list[GridItem] = field(default_factory=list)
    weak_open: bool = False
    reason: str = ""

    def items(self) -> list[GridItem]:
        if not self.strong:
            return self.weak
        if not self.weak:
            return self.strong
        tile = f"{plural(len(self.weak), 'weaker match')}\n{'▴ Hide' if self.weak_open else '▾ Show'}"
        return self.strong + [divider(tile)] + (self.weak if self.weak_open else [])

    def status(self) -> str:
        if not self.strong and not self.weak:
            return f"No matches — {self.what}"
        head = plural(len(self.strong), "match") if self.strong else "No strong matches"
        return f"{head} · {len(self.weak):,} weaker — {self.what}" if self.weak else f"{head} — {self.what}"


class Views:
    _results: Results | None = None

    # ---- sidebar views -------------------------------------------------------------------------
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
        self.libs = libs  # as last read: Preferences lists them without a read on the GUI thread
        self.sidebar.set_libraries(libs)
        self._libs = libs
        self.update_demo_banner()
        for key in ("all", "review", "errors"):
            self.sidebar.set_view_count(key, getattr(counts, key))
        self._mark_sidebar()  # rebuilding the library list must not move the highlight
        if self._sidebar_again:
            self._sidebar_again = False
            self.refresh_sidebar()

    def _show_errors(self, rows: list, title: str) -> None:
        self.errors_page.set_rows(rows)
        self.detail.clear()
        if rows:
            self.stack.setCurrentWidget(self.errors_page)
        else:
            self.show_empty(*EMPTY_VIEWS["errors"])
        self.jobs.say(
            f"{title} — {plural(len(rows), 'file')} could not be read" if rows else f"{title} — none"
        )

    def _show_tags(self, counts: dict[str, int], title: str) -> None:
        self.tags_page.set_counts(counts)
        self.stack.setCurrentWidget(self.tags_page)
        self.detail.clear()
        tagged = sum(counts.values())
        self.jobs.say(
            f"{title} — {plural(len(counts), 'label')} on {plural(tagged, 'photo')}"
            if counts
            else f"{title} — none yet"
        )

    def show_view(
        self,
        view: str,
        folder: str | None = None,
        tag: str | None = None,
        clear_search: bool = False,
        keep: tuple[int, list[int]] | None = None,
    ) -> None:
        """Show a sidebar view; `keep` = (image id just reviewed, the ids shown before) keeps the
        selection where the person was."""
        self._view = (view, folder, tag)
        self._results = None
        self.refresh_sidebar()  # counts may have changed since the last look (tags decided, files read)
        if clear_search and self.search.text():
            self._set_search_text("")
        self.banner.setVisible(False)
        self._mark_sidebar()
        title = self.view_title()
        if view == "errors":  # read in the read worker; a newer query drops it (and it drops older ones)
            self.query(
                lambda: self.lib.errors(limit=10_000), lambda rows: self._show_errors(rows, title), view
            )
            return
        if view == "tags":
            self.query(lambda: self.lib.tag_counts().by_label, lambda c: self._show_tags(c, title), view)
            return
        if view == "duplicates":
            self._seq += 1
            self.stack.setCurrentWidget(self.dups_page)
            self.detail.clear()
            self.jobs.say(f"{title} — looking for copies…")
            self.dups_page.refresh()
            return
        self.query(
            lambda: self.lib.browse(view, folder=folder, tag=tag),
            lambda items: self._show_browse(view, items, keep),
            view,
        )

    def view_title(self) -> str:
        view, folder, tag = self._view
        if tag:
            return f"Tag: {tag}"
        if folder:
            return Path(folder).name or folder
        return VIEW_TITLES.get(view, view)

    def _mark_sidebar(self) -> None:
        view, folder, tag = self._view
        if self.search.text().strip():
            self.sidebar.mark(None)  # search results are no sidebar view
        elif folder:
            self.sidebar.mark("library", folder)
        else:
            self.sidebar.mark("view", "tags" if tag else view)

    def _show_browse(
        self, view: str, rows: list[tuple[int, str]], keep: tuple[int, list[int]] | None
    ) -> None:
        items = [GridItem(i, p) for i, p in rows]
        row = 0
        if keep is not None:
            decided, old_ids = keep
            items = stable_order(old_ids, items)
            row = next_row(old_ids, decided, items)
        self.set_items(items, row)
        if not items:
            self.show_empty(*EMPTY_VIEWS.get(view, EMPTY_VIEWS["all"]))
        what = "to review" if view == "review" else ""
        self.jobs.say(f"{self.view_title()} — {plural(len(items), 'photo')}{' ' + what if what else ''}")

    def set_items(self, items: list[GridItem], row: int = 0) -> None:
        self.model.set_items(items)
        if items:
            self.stack.setCurrentWidget(self.grid)
            self.grid.setCurrentIndex(self.model.index(min(row, len(items) - 1)))
            if row:
                self.grid.scrollTo(self.grid.currentIndex())
            else:
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

    # ---- search --------------------------------------------------------------------------------
    def _set_search_text(self, text: str) -> None:
        self.search.blockSignals(True)  # setting it is not typing
        self.search.setText(text)
        self.search.blockSignals(False)

    def _on_search_edited(self, text: str) -> None:
        if text.strip():
            self.search_timer.start()
        else:  # cleared (typed away or the clear button): back to the view the search started from
            self.clear_search()

    def clear_search(self) -> None:
        self.search_timer.stop()
        self._set_search_text("")
        self.show_view(*self._view)

    def run_search(self) -> None:
        self.search_timer.stop()
        text = self.search.text().strip()
        if not text:
            self.show_view(*self._view)
            return
        self.sidebar.mark(None)
        _view, folder, tag = self._view
        flt = Filters(folder=folder, tag=tag)  # a search runs inside the library or tag being shown
        self.query(lambda: self.lib.search(text, flt), lambda r: self._show_results(r, f"“{text}”"), "search")

    def find_similar(self, image: int | str) -> None:
        what = Path(image).name if isinstance(image, str) else "this photo"
        self.sidebar.mark(None)
        self.query(
            lambda: self.lib.similar(image), lambda r: self._show_results(r, f"like {what}"), "similar"
        )

    def _show_results(self, result: Any, what: str) -> None:
        res = Results(what, reason=result.reason or "")
        for h in result.hits:
            (res.weak if h.weak else res.strong).append(GridItem(h.image_id, str(h.path), h.score, h.weak))
        self._results = res
        self.set_items(res.items())
        if not result.hits:
            self.show_empty(f"No photos match {what}", "Try other words, or index more folders.")
        elif not res.strong:
            why = f" ({res.reason})" if res.reason else ""
            self._banner(
                "weak", f"No strong matches for {what}{why}. These are the closest photos, weakest last."
            )
        self.banner.setVisible(bool(result.hits) and not res.strong)
        self.jobs.say(res.status())

    def toggle_weak(self) -> None:
        """Open or close the 'weaker matches' section, keeping the selected photo selected."""
        res = self._results
        if res is None:
            return
        current = self.grid.currentIndex()
        keep = self.model.items[current.row()].image_id if current.isValid() else None
        res.weak_open = not res.weak_open
        items = res.items()
        row = next(
            (n for n, it in enumerate(items) if keep is not None and it.image_id == keep and not it.divider),
            0,
        )
        self.model.set_items(items)
        self.grid.setCurrentIndex(self.model.index(row))
        if res.weak_open:
            self.grid.scrollTo(self.model.index(len(res.strong)))  # the divider and the first weak photos
