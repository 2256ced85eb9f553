"""How decode workers yield the CPU to the model, and a per-file limit that does not count starvation.

On a small machine (2 cores) every cycle a decode worker takes is taken from the model's threads, and a
matrix multiply waits for its slowest thread. On Linux the workers run in the idle scheduling class
(SCHED_IDLE: a core runs them only when nothing else wants it). Paired runs on 2 cores (bench/ingest.py
--policies idle,nice10, medians of 4-6 pairs) put end-to-end/model-only at 0.90-0.94 against 0.83-0.91
at nice +10 for mlx, and within the noise of nice +10 for torch (0.80-0.99 against 0.85-1.02). Such a
worker gets almost no CPU while other work runs, so the per-file limit counts only the time it was running or
blocked, not the time it waited for a core (Linux's run-queue wait, /proc/<pid>/task/*/schedstat); a
hung decoder (blocked, or spinning while it gets a core) still runs out of time. Where that wait cannot
be read (macOS, a kernel without schedstat) the limit is plain wall time, and the workers are only
reniced: a starved worker must not be blamed for a timeout. On a Mac the analogue of the idle class
would be the background QoS class (`setpriority(PRIO_DARWIN_PROCESS, 0, PRIO_DARWIN_BG)`); it is not
used or measured (there Metal runs the model on the GPU, so the workers compete with much less).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Priority:
    """What a decode worker does to itself before its first file."""

    idle_class: bool = False  # Linux SCHED_IDLE; a worker refused it falls back to `nice`
    nice: int = 0  # added to the worker's nice value (lower priority)

    def describe(self) -> str:
        return "SCHED_IDLE" if self.idle_class else f"nice +{self.nice}" if self.nice else "normal"


def choose_priority(nice: int, platform: str, has_idle_class: bool, waits_readable: bool) -> Priority:
    """The idle class only where the pool can tell a starved worker from a hung one (see the module doc)."""
    if platform.startswith("linux") and has_idle_class and waits_readable:
        return Priority(idle_class=True, nice=nice)
    return Priority(nice=nice)


def priority_here(nice: int) -> Priority:
    """`choose_priority` for this machine and process."""
    waits = read_run_wait(os.getpid()) is not None
    return choose_priority(nice, sys.platform, hasattr(os, "SCHED_IDLE"), waits)


def apply_priority(p: Priority, osm: Any = os) -> str:
    """Called in the worker: set `p` on this process; returns what it got (e.g. 'nice +10 (SCHED_IDLE
    refused: ...)'). Unprivileged processes may enter SCHED_IDLE; a sandbox may still refuse it."""
    refused = ""
    if p.idle_class:
        try:
            osm.sched_setscheduler(0, osm.SCHED_IDLE, osm.sched_param(0))
            return "SCHED_IDLE"
        except (AttributeError, OSError) as e:
            refused = f" (SCHED_IDLE refused: {type(e).__name__}: {e})"
    if p.nice and hasattr(osm, "nice"):
        osm.nice(p.nice)
        return f"nice +{p.nice}{refused}"
    return f"normal{refused}"


def read_run_wait(pid: int, proc: Path = Path("/proc")) -> float | None:
    """Seconds the threads of process `pid` have waited on a run queue, summed; None where unreadable.

    schedstat is 'cpu-ns wait-ns timeslices' per thread. A thread that exits takes its share with it,
    so the sum can fall: callers clamp (`out_of_time`). Kernels before 5.14 without schedstats or delay
    accounting show the file but never count: no timeslices at all means unknown, not "never waited"."""
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
        wait_ns = slices = 0
        for t in tasks:
            try:
                _, wait, n = (int(x) for x in (t / "schedstat").read_text().split()[:3])
            except FileNotFoundError:  # the thread exited meanwhile
                continue
            wait_ns, slices = wait_ns + wait, slices + n
        return wait_ns / 1e9 if slices else None
    except (OSError, ValueError):
        return None


def out_of_time(elapsed_s: float, waited_s: float | None, limit_s: float) -> bool:
    """Has a file used up `limit_s`? `elapsed_s` is wall time since it started, `waited_s` the run-queue
    wait accrued meanwhile (None: unknown, so plain wall time). Threads waiting at once can sum to more
    than the wall time; the wait never counts for more than that."""
    waited = min(max(waited_s or 0.0, 0.0), elapsed_s)
    return elapsed_s - waited > limit_s
