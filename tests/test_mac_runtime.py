"""The Mac runtime manners, tested with fakes on any platform: the App Nap / sleep activity around jobs,
MLX's cache handed back after jobs and model switches, and 16 MiB thread stacks for every Qt pool."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from app.core import activity, job_scope
from app.core.activity import NS_ACTIVITY_USER_INITIATED, job_activity

ROOT = Path(__file__).resolve().parents[1]


class FakeProcessInfo:
    """Records what NSProcessInfo would be asked; tokens are distinct objects as in Foundation."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def beginActivityWithOptions_reason_(self, options: int, reason: str) -> object:
        token = object()
        self.calls.append(("begin", options, reason, token))
        return token

    def endActivity_(self, token: object) -> None:
        self.calls.append(("end", token))


def test_a_job_holds_a_user_initiated_activity_that_also_blocks_idle_sleep_until_it_ends() -> None:
    info = FakeProcessInfo()
    with job_activity("Fovea: index", process_info=lambda: info) as held:
        assert held and [c[:3] for c in info.calls] == [("begin", NS_ACTIVITY_USER_INITIATED, "Fovea: index")]
    assert info.calls[-1] == ("end", info.calls[0][3])
    assert NS_ACTIVITY_USER_INITIATED & (1 << 20) and NS_ACTIVITY_USER_INITIATED == 0x00FFFFFF


def test_the_activity_ends_when_the_job_fails() -> None:
    info = FakeProcessInfo()
    with pytest.raises(ValueError), job_activity("x", process_info=lambda: info):
        raise ValueError("broken job")
    assert [c[0] for c in info.calls] == ["begin", "end"]


@pytest.mark.skipif(sys.platform == "darwin", reason="off macOS there is no NSProcessInfo")
def test_off_macos_the_activity_is_a_no_op() -> None:
    assert activity.macos_process_info() is None
    with job_activity("x") as held:
        assert held is False


def test_job_scope_empties_the_mlx_cache_after_success_and_failure(monkeypatch) -> None:
    released, info = [], FakeProcessInfo()
    monkeypatch.setattr(job_scope, "release_cache", lambda: released.append(len(info.calls)))
    monkeypatch.setattr(activity, "macos_process_info", lambda: info)
    monkeypatch.setattr(job_scope, "job_activity", lambda r: job_activity(r, process_info=lambda: info))
    with job_scope.job_scope("tag"):
        pass
    with pytest.raises(RuntimeError), job_scope.job_scope("caption"):
        raise RuntimeError("x")
    assert released == [1, 3]  # inside the activity, after the job's work, both times
    assert [c[2] for c in info.calls if c[0] == "begin"] == ["Fovea: tag", "Fovea: caption"]


def test_gui_jobs_run_inside_a_job_scope(qtbot, monkeypatch) -> None:
    from app.gui import workers

    seen = []

    class Scope:
        def __init__(self, name):
            seen.append(("enter", name))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            seen.append(("exit", exc[0].__name__ if exc[0] else None))

    monkeypatch.setattr(workers, "job_scope", Scope)

    def gen(should_stop):
        seen.append(("step", 1))
        yield 1
        return "done"

    job = workers.Job(gen, name="index")
    with qtbot.waitSignal(job.signals.finished):
        job.run()
    assert seen == [("enter", "index"), ("step", 1), ("exit", None)]


def test_model_switch_empties_the_mlx_cache(tmp_path, monkeypatch) -> None:
    import mlx_models.device as device

    from app.core.api import Library

    calls = []
    monkeypatch.setattr(device, "release_cache", lambda: calls.append(1))
    s = Library(tmp_path / "db.sqlite", "demo", "mlx")
    s.set_model("other", "mlx")
    s.close()
    assert calls == [1]


def test_every_qt_thread_pool_gets_a_16_mib_stack(qapp) -> None:
    from PySide6.QtCore import QThreadPool

    from app.gui.threads import STACK_BYTES, configure_global_pool, thread_pool

    assert STACK_BYTES == 16 * 2**20
    assert thread_pool(max_threads=1).stackSize() == STACK_BYTES
    assert configure_global_pool() is QThreadPool.globalInstance()
    assert QThreadPool.globalInstance().stackSize() == STACK_BYTES
    # No pool or thread is made any other way.
    made_elsewhere = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "app").rglob("*.py")
        if p.name != "threads.py" and re.search(r"\bQThread(Pool)?\(", p.read_text(encoding="utf-8"))
    ]
    assert made_elsewhere == []
