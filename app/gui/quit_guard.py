"""Quitting while a job runs: ask "stop after the current batch?", then quit once the batch is committed.

A job's batch is one transaction, so the window never closes halfway through one: it cancels the job
(which stops at the next batch boundary, everything before kept) and closes when the job has ended.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

QUESTION = "{name} is running. Stop it after the current batch and quit?\n\nEverything done so far is kept; running it again continues where it stopped."


def ask_stop(parent: QWidget, name: str) -> bool:
    """True to stop the job and quit. Headless runs (smoke tests, offscreen) have no one to ask: stop."""
    if os.environ.get("FOVEA_GUI_QUIT_AFTER_MS") or QGuiApplication.platformName() == "offscreen":
        return True
    answer = QMessageBox.question(
        parent,
        "Quit Fovea?",
        QUESTION.format(name=name),
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def may_close(win, event) -> bool:
    """Call first in closeEvent: False (event ignored) while a job still has to stop."""
    job = win.jobs.job
    if job is None:
        return True
    event.ignore()
    if getattr(win, "_close_after_job", False):
        return False  # already stopping; the window closes when the job has ended
    if not ask_stop(win, job.name):
        return False
    win._close_after_job = True
    job.cancel()
    win.jobs.say(f"Stopping {job.name.lower()} after the current batch, then quitting…")
    win.jobs.finished.connect(lambda *_: QTimer.singleShot(0, win.close))
    return False
