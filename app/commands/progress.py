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


@contextmanager
def graceful_interrupt() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C asks the job to stop after its current batch; a second one interrupts at once."""
    state = {"stop": False}
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if state["stop"]:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        state["stop"] = True
        print("\nfovea: stopping after the current batch (Ctrl-C again to abort)", file=sys.stderr)

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (tests drive main() from threads): plain Ctrl-C
        yield lambda: False
        return
    try:
        yield lambda: state["stop"]
    finally:
        signal.signal(signal.SIGINT, previous)


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
