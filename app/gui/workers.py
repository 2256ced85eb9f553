"""Core generators run off the GUI thread: a QRunnable per job, reporting through signals."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QTimer, Signal

from app.core.job_scope import job_scope

# Signals objects of runnables in flight. A QRunnable is deleted when run() returns; without this
# reference its signals object would go with it and the queued result would never be delivered.
_IN_FLIGHT: set[JobSignals] = set()
log = logging.getLogger("fovea.gui")


def _keep_alive(signals: JobSignals) -> JobSignals:
    _IN_FLIGHT.add(signals)
    # Delivered on the GUI thread; released one event-loop turn later, after every other slot of `finished`.
    signals.finished.connect(lambda: QTimer.singleShot(0, lambda: _IN_FLIGHT.discard(signals)))
    return signals


def _emit(signal, *args) -> None:
    try:
        signal.emit(*args)
    except RuntimeError:  # the window (and with it the receivers) closed while the worker ran
        pass


def one_line(e: BaseException) -> str:
    """The reason a person can act on: the exception's first line (its type when it has no message)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class JobSignals(QObject):
    progress = Signal(object)  # whatever the core generator yields
    result = Signal(object)  # the generator's return value (StopIteration.value) or a function's result
    error = Signal(str)  # one-line reason
    finished = Signal()


class Job(QRunnable):
    """Drive `make_gen(should_stop)` to its end in a pool thread.

    `should_stop` is what core jobs poll between batches, so cancel stops after the current batch
    with everything committed; pause blocks at the same points.
    """

    def __init__(self, make_gen: Callable[[Callable[[], bool]], Iterator[Any]], name: str = "job") -> None:
        super().__init__()
        self.name = name
        self.signals = _keep_alive(JobSignals())
        self._make_gen = make_gen
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # a paused job must wake up to notice the cancel

    def pause(self, paused: bool) -> None:
        (self._running.clear if paused else self._running.set)()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _should_stop(self) -> bool:
        self._running.wait()
        return self._cancel.is_set()

    def run(self) -> None:
        try:
            with job_scope(self.name):  # no App Nap / idle sleep meanwhile; MLX cache emptied after
                gen = self._make_gen(self._should_stop)
                while True:
                    try:
                        item = next(gen)
                    except StopIteration as stop:
                        _emit(self.signals.result, stop.value)
                        break
                    _emit(self.signals.progress, item)
        except Exception as e:  # a worker must never take the app down; the GUI shows the reason
            log.debug(
                "%s failed", self.name, exc_info=True
            )  # the window shows the reason; details on request
            _emit(self.signals.error, one_line(e))
        finally:
            _emit(self.signals.finished)


class Call(QRunnable):
    """Run one function in a pool thread and deliver its result (model loading, one search...)."""

    def __init__(self, fn: Callable[[], Any], name: str = "call") -> None:
        super().__init__()
        self.name = name
        self.fn = fn
        self.signals = _keep_alive(JobSignals())

    def run(self) -> None:
        try:
            _emit(self.signals.result, self.fn())
        except Exception as e:
            _emit(self.signals.error, f"{self.name}: {one_line(e)}")
        finally:
            _emit(self.signals.finished)
