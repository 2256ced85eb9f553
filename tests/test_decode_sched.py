"""Decode workers yield the CPU (idle class on Linux), and the per-file limit does not count starvation."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core.decode_pool import Decoded, DecodeJob, DecodePool, Failed
from app.core.decode_sched import (
    Priority,
    apply_priority,
    choose_priority,
    out_of_time,
    priority_here,
    read_run_wait,
)
from tests.builders.images import photo, save_jpeg

BAD = "tests.builders.bad_decoders:decode"
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SCHED_IDLE and schedstat are Linux's"
)


def files(folder: Path, names: list[str]) -> list[Path]:
    return [save_jpeg(folder / n, photo(64, 48, k)) for k, n in enumerate(names)]


def test_the_idle_class_only_where_the_pool_can_see_starvation():
    assert choose_priority(10, "linux", True, True) == Priority(idle_class=True, nice=10)
    assert choose_priority(10, "linux", True, False) == Priority(
        nice=10
    )  # no schedstat: wall limit, so renice
    assert choose_priority(10, "linux", False, True) == Priority(nice=10)
    assert choose_priority(10, "darwin", True, True) == Priority(
        nice=10
    )  # macOS: nice (a QoS class unmeasured)
    assert Priority(idle_class=True, nice=10).describe() == "SCHED_IDLE"
    assert Priority(nice=10).describe() == "nice +10" and Priority().describe() == "normal"


def test_a_worker_refused_the_idle_class_falls_back_to_nice():
    calls = []

    def refuse(*_: object) -> None:
        raise PermissionError("Operation not permitted")

    fake = SimpleNamespace(
        SCHED_IDLE=5, sched_param=lambda p: p, sched_setscheduler=refuse, nice=calls.append
    )
    got = apply_priority(Priority(idle_class=True, nice=10), fake)
    assert got == "nice +10 (SCHED_IDLE refused: PermissionError: Operation not permitted)" and calls == [10]
    no_idle = SimpleNamespace(nice=calls.append)  # a platform without sched_setscheduler
    assert apply_priority(Priority(idle_class=True, nice=7), no_idle).startswith(
        "nice +7 (SCHED_IDLE refused"
    )
    assert calls == [10, 7]


def test_the_limit_counts_time_running_or_blocked_never_time_waiting_for_a_core():
    assert not out_of_time(elapsed_s=50, waited_s=0, limit_s=60)
    assert out_of_time(elapsed_s=61, waited_s=0, limit_s=60)  # a blocked hang accrues no wait
    assert not out_of_time(elapsed_s=300, waited_s=250, limit_s=60)  # starved 250 s: 50 s used
    assert out_of_time(elapsed_s=300, waited_s=230, limit_s=60)  # a spinning hang runs out once it had 60 s
    assert out_of_time(elapsed_s=61, waited_s=None, limit_s=60)  # unknown wait: the wall limit
    assert out_of_time(elapsed_s=61, waited_s=-5, limit_s=60)  # threads exited: the sum fell, never extends
    # Threads waiting at once sum past the wall time; the wait counts for at most the wall time.
    assert not out_of_time(elapsed_s=100, waited_s=400, limit_s=60)


def test_run_queue_wait_is_summed_over_the_threads_and_none_where_unreadable(tmp_path):
    for tid, line in (("41", "5000 2000000000 3"), ("42", "10 500000000 1")):
        (tmp_path / "41" / "task" / tid).mkdir(parents=True)
        (tmp_path / "41" / "task" / tid / "schedstat").write_text(line + "\n")
    assert read_run_wait(41, tmp_path) == pytest.approx(2.5)
    assert read_run_wait(43, tmp_path) is None  # no such process (or no /proc: macOS)
    (tmp_path / "44" / "task" / "44").mkdir(parents=True)
    (tmp_path / "44" / "task" / "44" / "schedstat").write_text("garbage\n")
    assert read_run_wait(44, tmp_path) is None
    (tmp_path / "45" / "task" / "45").mkdir(parents=True)
    (tmp_path / "45" / "task" / "45" / "schedstat").write_text(
        "123456 0 0\n"
    )  # an old kernel that never counts
    assert read_run_wait(45, tmp_path) is None


@linux_only
def test_this_machines_workers_enter_the_idle_class_and_say_so(tmp_path):
    if read_run_wait(os.getpid()) is None:
        pytest.skip("this kernel shows no run-queue wait: the workers are reniced instead (tested above)")
    p = priority_here(10)
    assert p == Priority(idle_class=True, nice=10)
    with DecodePool(DecodeJob(min_side=32, priority=p), workers=1) as pool:
        ((_, out),) = pool.run(files(tmp_path, ["a.jpg"]), depth=1)
        assert isinstance(out, Decoded) and pool.applied == "SCHED_IDLE"
        assert os.sched_getscheduler(pool._slots[0].proc.pid) == os.SCHED_IDLE


def test_a_starved_but_healthy_worker_is_not_timed_out_and_a_hang_still_is(tmp_path, capfd):
    """The 2 s 'sleepy' file stands for one starved of CPU: a fake reader says the worker waited for a
    core the whole time, so a 1 s limit does not apply. Without the wait (None: unreadable) it times out.
    The 'hang' sleeps, so it accrues no run-queue wait and times out even in the idle class."""
    paths = files(tmp_path, ["a.jpg", "sleepy.jpg", "b.jpg"])

    def starved(pid: int) -> float:
        return time.monotonic()  # 1 s of run-queue wait per second

    with DecodePool(DecodeJob(min_side=32, decoder=BAD), workers=1, timeout_s=1, run_wait=starved) as pool:
        got = dict(pool.run(paths, depth=3))
        assert pool.restarts == 0
    assert all(isinstance(o, Decoded) for o in got.values())
    with DecodePool(
        DecodeJob(min_side=32, decoder=BAD), workers=1, timeout_s=1, run_wait=lambda pid: None
    ) as pool:
        got = dict(pool.run(paths, depth=3))
    assert got[1] == Failed("decoder timed out after 1 s") and isinstance(got[2], Decoded)

    hang = files(tmp_path, ["c.jpg", "hang.jpg", "d.jpg"])
    with DecodePool(
        DecodeJob(min_side=32, decoder=BAD, priority=priority_here(10)), workers=1, timeout_s=2
    ) as pool:
        got = dict(pool.run(hang, depth=3))  # returns: a sleeping hang waits for no core, so no extension
    assert got[1] == Failed("decoder timed out after 2 s") and isinstance(got[2], Decoded)
    assert capfd.readouterr().err == ""
