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


def progress(
    kind: JobKind,
    done: int,
    total: int | None,
    phase: str = "",
    errors: int = 0,
    elapsed_s: float | None = None,
    message: str | None = None,
) -> JobProgress:
    """A JobProgress with the text the front ends show; the ETA follows from the time spent so far."""
    total = int(total or 0)
    if message:
        text = message
    elif kind is JobKind.INDEX and phase == "scan":
        text = f"Scanning… {done} files"
    else:
        text = f"{kind.label}… {done} of {total}" if total else f"{kind.label}…"
    if errors:
        text += f" · {errors} unreadable"
    eta = elapsed_s / done * (total - done) if elapsed_s is not None and total and done else None
    return JobProgress(done, total, text, eta, errors, phase)


def describe(kind: JobKind, p: Any) -> JobProgress:
    """The item of a job that reports in its own type (the puller, the explainer) as a JobProgress;
    one mapping per type, no guessing, and anything else is refused."""
    from app.core.explain import ExplainProgress
    from app.core.model_pull import PullProgress

    if isinstance(p, JobProgress):
        return p
    if isinstance(p, ExplainProgress):
        return progress(kind, p.done, p.total)
    if isinstance(p, PullProgress):
        return progress(kind, p.done_bytes, p.total_bytes, p.stage, message=p.message)
    raise TypeError(f"a {kind.label} job reported {type(p).__name__}, which is not a progress item")


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
