"""Progress on stderr for long jobs, and Ctrl-C that stops after the current batch."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

from app.core.contracts import JobProgress

T = TypeVar("T")


# Ctrl-C, `kill` / logout / a service manager, a closed terminal: all ask for the same clean stop.
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Interrupted(KeyboardInterrupt):
    """A second stop signal: abort now; the transaction in flight rolls back (exit 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StopRequest:
    """Callable `should_stop` for core jobs; `signum` is the signal that asked (None: not asked)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        """128 + signum, as a shell reports a process ended by that signal (130 Ctrl-C, 143 SIGTERM)."""
        return 128 + self.signum if self.signum else 0


_active: list[StopRequest] = []


def say(msg: str) -> None:
    """Print to stderr, quietly giving up when the terminal is gone (after SIGHUP)."""
    try:
        print(msg, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


@contextmanager
def graceful_interrupt() -> Iterator[StopRequest]:
    """The first SIGINT/SIGTERM/SIGHUP asks the job to stop after its current batch; a second one
    aborts at once (Interrupted). Nested uses (index --watch runs index jobs) share one request."""
    if _active:
        yield _active[-1]
        return
    req = StopRequest()

    def handler(signum, frame):
        if req.signum is not None:
            raise Interrupted(signum)
        req.signum = signum
        if signum == getattr(signal, "SIGHUP", None) and sys.stderr.isatty():
            _detach_from_terminal()
        say(f"\nfovea: {req.name} received; stopping after the current batch (send it again to abort now)")

    previous = {}
    try:
        for s in STOP_SIGNALS:
            previous[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread (tests drive main() from threads): plain Ctrl-C
        yield StopRequest()
        return
    _active.append(req)
    try:
        yield req
    finally:
        _active.pop()
        for s, h in previous.items():
            signal.signal(s, h)


def _detach_from_terminal() -> None:
    """A hung-up terminal turns every write into EIO: send further output nowhere instead."""
    import os

    null = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr = null


def bar(desc: str) -> tqdm:
    return tqdm(desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True, disable=None, leave=True)


def drive(job: Generator[JobProgress, None, T], on_progress: Callable[[JobProgress], object]) -> T:
    """Run a core job to its end, handing each progress item to `on_progress`; returns its result."""
    while True:
        try:
            p = next(job)
        except StopIteration as done:
            return done.value
        on_progress(p)


def job_bar() -> Callable[[JobProgress], None]:
    """A progress callback for `drive` that shows any job's message, count and total on one line."""
    shown: list[tqdm] = []

    def show(p: JobProgress) -> None:
        if not shown:
            shown.append(tqdm(file=sys.stderr, dynamic_ncols=True, disable=None, leave=False))
        b = shown[0]
        b.set_description_str(p.message.split("…")[0], refresh=False)
        b.total, b.n = p.total or None, p.done
        b.refresh()
        if p.total and p.done >= p.total:
            b.close()
            shown.clear()

    return show
