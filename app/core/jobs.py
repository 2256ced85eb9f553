"""Long jobs as generators of one progress type (`JobProgress`), whatever the job yields inside.

The CLI draws bars from them and the GUI runs them in its job worker; the generator's return value
(an IndexSummary, a CaptionSummary, a folder...) is the job's result.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

from app.core.contracts import JobKind, JobProgress

T = TypeVar("T")
StopFn = Callable[[], bool]
Job = Generator[JobProgress, None, Any]


def describe(kind: JobKind, p: Any) -> JobProgress:
    """A job's own progress item (indexer, tagger, captioner, puller, a count) as a JobProgress."""
    if isinstance(p, JobProgress):
        return p
    done = int(getattr(p, "done", getattr(p, "done_bytes", 0)) or 0)
    total = int(getattr(p, "total", getattr(p, "total_bytes", 0)) or 0)
    phase = getattr(p, "phase", getattr(p, "stage", ""))
    errors = int(getattr(p, "errors", 0) or 0)
    if kind is JobKind.INDEX and phase == "scan":
        text = f"Scanning… {done} files"
    elif getattr(p, "message", None):
        text = str(p.message)
    else:
        text = f"{kind.label}… {done} of {total}" if total else f"{kind.label}…"
    if errors:
        text += f" · {errors} unreadable"
    return JobProgress(done, total, text, getattr(p, "eta_s", None), errors, p)


def as_job(kind: JobKind, gen: Generator[Any, None, T]) -> Generator[JobProgress, None, T]:
    """Wrap a core generator: every item becomes a JobProgress; its return value passes through."""
    try:
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                return stop.value
            yield describe(kind, item)
    finally:
        gen.close()  # a consumer that stops early closes the job now (its connection, its files)


def stoppable(items: Iterator[T], should_stop: StopFn | None) -> Iterator[T]:
    """Stop pulling from `items` once `should_stop()` says so (each item was already committed)."""
    for it in items:
        yield it
        if should_stop is not None and should_stop():
            break
