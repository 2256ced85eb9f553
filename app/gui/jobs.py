"""The status bar: on the left one line that describes the view (set by the window, never by jobs); on
the right the job area, one long job at a time (index, tag, caption, pull) with its own text, progress,
ETA, pause and cancel. A failed job is reported through `failed` with a way to retry it, so the window can
show it until dismissed. Jobs are core generators driven by a `Job` worker; only signals reach this thread.
Jobs are known by their `JobKind` and report `JobProgress` only (core's jobs turn their own items into it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from app.core.contracts import JobKind, JobProgress
from app.gui.workers import Job


class JobBar(QObject):
    """Owns the status-bar widgets and the one running job."""

    finished = Signal(object, object)  # JobKind, the generator's return value (None after an error)
    failed = Signal(str, str, object)  # job name, one-line reason, a no-argument callable that retries
    progressed = Signal(object, object)  # JobKind, JobProgress (the window refreshes counts from it)

    def __init__(self, status: QStatusBar, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.job: Job | None = None
        self.kind = JobKind.INDEX  # the running (or last) job's kind
        self._result: Any = None
        self._started = 0.0
        self._error: str | None = None
        self.label = QLabel("Ready")  # what the view shows
        self.label.setObjectName("status")
        self.job_label = QLabel()  # what the running (or last) job is doing
        self.job_label.setObjectName("job-status")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setTextVisible(False)
        self.eta = QLabel()
        self.pause_btn = QPushButton("Pause")
        self.cancel_btn = QPushButton("Cancel")
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.cancel_btn.clicked.connect(self.cancel)
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 6, 0)
        for w in (self.job_label, self.progress, self.eta, self.pause_btn, self.cancel_btn):
            row.addWidget(w)
        status.addWidget(self.label, 1)
        status.addPermanentWidget(box)
        self._show(False)

    @property
    def running(self) -> bool:
        return self.job is not None

    def say(self, text: str) -> None:
        """The view's line (the window's description of what is shown)."""
        self.label.setText(text)

    def tell(self, text: str) -> None:
        """The job area's line."""
        self.job_label.setText(text)

    def start(
        self, make_gen: Callable[[Callable[[], bool]], Iterator[Any]], kind: JobKind, name: str | None = None
    ) -> bool:
        """Run the job unless one is already running (then say so and return False)."""
        name = name or kind.label
        if self.job is not None:
            self.tell(f"{self.job.name} is still running; wait for it or cancel it first.")
            return False
        self.job = Job(make_gen, name)
        self.kind = kind
        self._retry = lambda: self.start(make_gen, kind, name)
        self._result, self._error = None, None
        self.job.signals.progress.connect(self._on_progress)
        self.job.signals.result.connect(self._on_result)
        self.job.signals.error.connect(self._on_error)
        self.job.signals.finished.connect(self._on_finished)
        self._started = time.monotonic()
        self.progress.setRange(0, 0)  # busy until the first item says how much there is
        self._show(True)
        self.tell(f"{name}…")
        self.pool.start(self.job)
        return True

    def _on_progress(self, p: Any) -> None:
        if self.job is None:
            return
        if not isinstance(p, JobProgress):  # a job must speak the one progress type (app.core.jobs.as_job)
            raise TypeError(f"{self.job.name} reported {type(p).__name__}, not a JobProgress")
        jp = p
        done, total, text, eta = jp.done, jp.total, jp.message, jp.eta_s
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
        if eta is None and 0 < done < total:
            eta = (time.monotonic() - self._started) / done * (total - done)
        self.eta.setText(_eta_text(eta) if eta is not None and done < total else "")
        self.tell(("Paused — " if self.job.paused else "") + text)
        self.progressed.emit(self.kind, jp)

    def _on_result(self, value: Any) -> None:
        self._result = value

    def _on_error(self, message: str) -> None:
        self._error = message

    def _on_finished(self) -> None:
        job, self.job = self.job, None
        self._show(False)
        if job is None:
            return
        if self._error is not None:
            self.tell(f"{job.name} failed")
            self.failed.emit(job.name, self._error, self._retry)
        elif job.cancelled:
            self.tell(f"{job.name} stopped; everything done so far is kept.")
        else:
            self.tell(_summary(self.kind, job.name, self._result))
        self.finished.emit(self.kind, self._result)

    def _show(self, running: bool) -> None:
        for w in (self.progress, self.eta, self.pause_btn, self.cancel_btn):
            w.setVisible(running)
        self.pause_btn.setText("Pause")
        self.eta.clear()

    def toggle_pause(self) -> None:
        if self.job:
            self.job.pause(not self.job.paused)
            self.pause_btn.setText("Resume" if self.job.paused else "Pause")
            self.tell(f"{self.job.name} paused" if self.job.paused else f"{self.job.name}…")

    def cancel(self) -> None:
        if self.job:
            self.job.cancel()
            self.tell(f"Stopping {self.job.name.lower()} after the current batch…")


def _eta_text(seconds: float) -> str:
    s = int(round(seconds))
    return f"about {s // 60} min {s % 60:02d} s left" if s >= 60 else f"about {s} s left"


def _summary(kind: JobKind, name: str, result: Any) -> str:
    if kind is JobKind.INDEX and result is not None:
        text = f"Indexed: {result.added} new, {result.embedded} embedded"
        if result.errors:
            text += f", {result.errors} unreadable (see Errors)"
        if result.offline_roots:
            text += f"; offline: {', '.join(str(r) for r in result.offline_roots)}"
        return text
    return f"{name} finished"
