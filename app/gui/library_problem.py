"""The library file cannot be opened (damaged, not a database, a folder, read-only, from a newer Fovea):
say what is wrong and offer a way on — open another library, start a new one (the old file is moved
aside under a dated name, never deleted), or browse and search it without changes."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QDialog, QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.api import Library
from app.core.library_file import LibraryProblem, aside_name, diagnose, move_aside
from app.core.store import StoreError

OTHER, NEW, BROWSE, REPAIR, QUIT = "other", "new", "browse", "repair", "quit"


class LibraryProblemDialog(QDialog):
    def __init__(self, problem: LibraryProblem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.problem = problem
        self.choice = QUIT
        self.setWindowTitle("Fovea can't open this library")
        self.setMinimumWidth(560)
        lay = QVBoxLayout(self)
        aside = aside_name(problem.path).name if problem.path.exists() else ""
        self.text = QLabel(
            f"<h3>{html.escape(problem.summary)}</h3>"
            f"<p><code>{html.escape(str(problem.path))}</code></p>"
            f"<p style='color:gray'>{html.escape(problem.detail)}</p>"
            "<p>Nothing has been changed. You can open another library, start a new one here "
            + (f"(the old one is kept, renamed to <code>{html.escape(aside)}</code>)" if aside else "")
            + (", or browse and search this one without changes." if problem.can_browse else ".")
            + "</p>"
        )
        self.text.setWordWrap(True)
        lay.addWidget(self.text)
        row = QHBoxLayout()
        self.other_btn = QPushButton("Open Another Library…")
        self.new_btn = QPushButton("Start a New Library")
        self.browse_btn = QPushButton("Browse Read-Only")
        self.browse_btn.setVisible(problem.can_browse)
        # A damaged file: salvage what is readable into a new one (`fovea doctor --repair`).
        self.repair_btn = QPushButton("Repair")
        self.repair_btn.setVisible(problem.kind == "corrupt")
        quit_btn = QPushButton("Quit")
        for b, choice in (
            (self.repair_btn, REPAIR),
            (self.other_btn, OTHER),
            (self.new_btn, NEW),
            (self.browse_btn, BROWSE),
            (quit_btn, QUIT),
        ):
            row.addWidget(b)
            b.clicked.connect(lambda _=False, c=choice: self._choose(c))
        (self.browse_btn if problem.can_browse else self.new_btn).setDefault(True)
        lay.addLayout(row)

    def _choose(self, choice: str) -> None:
        self.choice = choice
        self.accept() if choice != QUIT else self.reject()


def ask(problem: LibraryProblem) -> tuple[str, Path | None]:
    """Show the dialog; (choice, the other library's path when the choice is OTHER)."""
    dlg = LibraryProblemDialog(problem)
    dlg.exec()
    if dlg.choice == OTHER:
        name, _ = QFileDialog.getOpenFileName(
            None,
            "Open a Fovea library",
            str(problem.path.parent),
            "Fovea libraries (*.sqlite *.db);;All files (*)",
        )
        return (OTHER, Path(name)) if name else (QUIT, None)
    return dlg.choice, None


def open_library(
    db: Path,
    model: str | None,
    backend: str,
    ask: Callable[[LibraryProblem], tuple[str, Path | None]] = ask,
) -> Library | None:
    """The library at `db`, asking the person what to do while it cannot be opened; None: quit."""
    read_only, note = False, ""
    while True:
        try:
            return Library(db, model, backend, read_only=read_only, exact_path=True)
        except StoreError as e:
            p = diagnose(db, e)
            # Browsing failed too: the file can only be replaced or left.
            problem = LibraryProblem(
                p.path, p.kind, p.summary, note + p.detail, p.can_browse and not read_only
            )
            choice, other = ask(problem)
            read_only, note = False, ""
            if choice == OTHER and other is not None:
                db = other
            elif choice == NEW:
                try:
                    if Path(db).exists():
                        move_aside(Path(db))
                except OSError as moved:
                    note = f"It could not be moved aside ({moved.strerror}). "
            elif choice == BROWSE:
                read_only = True
            elif choice == REPAIR:
                from app.core.errors import FoveaError
                from app.core.salvage import repair

                try:
                    repair(db)  # keeps the damaged file beside it under a dated name
                except FoveaError as failed:
                    note = f"The repair did not succeed: {failed} "
            else:
                return None
