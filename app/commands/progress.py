"""Progress on stderr for long jobs, and Ctrl-C that stops after the current batch."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


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
