"""First run: offer the bundled demo library, or pulling a real model when the computer is online."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from app.core.contracts import JobKind
from app.core.model_registry import entry

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

FIRST_MODEL = "clip-vit-b32"


def online(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """Whether the model hub answers; checked in a worker (a DNS lookup may take seconds)."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


class FirstRunDialog(QDialog):
    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self.setWindowTitle("Welcome to Fovea")
        self.setMinimumWidth(520)
        lay = QVBoxLayout(self)
        intro = QLabel(
            "<h3>Search your photos by what is in them</h3>"
            "<p>Drop a folder of photos on the window to start. Everything runs on this computer, "
            "and Fovea never changes, moves or deletes your photos.</p>"
            "<p>To look around first, open the demo library: a few hundred generated pictures "
            "searched with the small bundled model.</p>"
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.net = QLabel("Checking whether this computer is online…")
        self.net.setWordWrap(True)
        lay.addWidget(self.net)
        row = QHBoxLayout()
        self.demo_btn = QPushButton("Open the Demo Library")
        e = entry(FIRST_MODEL)
        self.pull_btn = QPushButton(f"Download {FIRST_MODEL} (~{e.download_mb if e else '?'} MB)")
        self.pull_btn.setEnabled(False)
        later = QPushButton("Not Now")
        for b in (self.demo_btn, self.pull_btn, later):
            row.addWidget(b)
        lay.addLayout(row)
        self.demo_btn.setDefault(True)
        self.demo_btn.clicked.connect(self._demo)
        self.pull_btn.clicked.connect(self._pull)
        later.clicked.connect(self.reject)
        win.call(win.side, online, self._on_online, "network check")

    def _on_online(self, is_online: bool) -> None:
        if is_online:
            self.net.setText(
                "This computer is online: you can also download a real CLIP model now "
                "(it is checked and converted here, with progress in the status bar)."
            )
            self.pull_btn.setEnabled(True)
        else:
            self.net.setText(
                "This computer is offline, so real models cannot be downloaded now. "
                "The demo library works without a network; models can be pulled later from "
                "Preferences."
            )

    def _demo(self) -> None:
        self.accept()
        self.win.open_demo()

    def _pull(self) -> None:
        from app.gui.preferences import pull_job

        self.accept()
        self.win.jobs.start(pull_job(FIRST_MODEL), JobKind.PULL, f"Pulling {FIRST_MODEL}")


def offer_first_run(win: MainWindow) -> None:
    FirstRunDialog(win).open()
