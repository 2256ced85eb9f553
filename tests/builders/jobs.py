"""Running a core job generator (index, caption_library, a Library job) in a test: its items and its result."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

T = TypeVar("T")


def collect(gen: Generator[Any, None, T]) -> tuple[T, list[Any]]:
    """Every item the job yields, and its return value (the summary)."""
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return stop.value, items


def run_to_end(gen: Generator[Any, None, T]) -> T:
    """The job's return value (the summary), its progress items dropped."""
    return collect(gen)[0]
