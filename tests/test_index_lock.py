"""One indexer per library: a second indexer waits for the first and repeats none of its work (real processes)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.demo import write_demo_library
from app.core.index_lock import IndexerBusy, IndexLock, index_lock, lock_path
from app.core.paths import demo_model_dir

ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
from pathlib import Path
from app.core.index_lock import IndexLock
lock = IndexLock(sys.argv[1])
assert lock.try_acquire()
print("held", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.05)
lock.release()
"""


def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "FOVEA_DATA_DIR": str(tmp_path / "data")}


def hold_lock(db: Path, release: Path, tmp_path: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), str(release)],
        stdout=subprocess.PIPE,
        text=True,
        env=env(tmp_path),
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def wait_for(predicate, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def test_the_lock_is_exclusive_across_processes_and_says_who_holds_it(tmp_path):
    db, release = tmp_path / "lib.sqlite", tmp_path / "release"
    holder = hold_lock(db, release, tmp_path)
    with pytest.raises(IndexerBusy, match=rf"pid {holder.pid}\) is indexing"):
        with index_lock(db, wait=False):
            pass
    said: list[str] = []
    release_later = lambda msg: (said.append(msg), release.touch())  # noqa: E731 - let go once we wait
    with index_lock(db, on_wait=release_later, poll_s=0.05):
        other = IndexLock(db)
        assert other.try_acquire() is False  # now ours: another opener is refused
        other.release()
    assert holder.wait(timeout=60) == 0 and len(said) == 1 and "waiting for it to finish" in said[0]
    assert lock_path(db).exists()


@pytest.mark.skipif(not demo_model_dir().is_dir(), reason="the bundled demo model is missing")
def test_two_fovea_index_processes_on_one_library_embed_each_image_once(tmp_path):
    photos = tmp_path / "shapes"
    for _ in write_demo_library(photos, n=16, seed=5):
        pass
    db, release = tmp_path / "lib.sqlite", tmp_path / "release"
    holder = hold_lock(db, release, tmp_path)  # both indexers start while the library is busy
    runs = []
    for name in ("a", "b"):
        err = tmp_path / f"{name}.err"
        cmd = [sys.executable, "-m", "app", "--db", str(db), "--backend", "mlx", "index", str(photos)]
        runs.append(
            (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err.open("w"), env=env(tmp_path)), err)
        )

    def both_waiting() -> bool:
        for proc, err in runs:
            assert proc.poll() is None, err.read_text()  # neither may finish while the library is busy
        return all("waiting for it to finish" in err.read_text() for _, err in runs)

    wait_for(both_waiting)
    release.touch()
    assert holder.wait(timeout=60) == 0
    embedded = []
    for proc, err in runs:
        assert proc.wait(timeout=600) == 0, err.read_text()
        text = err.read_text()
        assert f"pid {holder.pid}" in text  # the line names who it waited for
        embedded.append(int(re.search(r"indexed: (\d+) embedded", text).group(1)))
    assert sorted(embedded) == [0, 16]  # one did the work; the other found every file already embedded


def test_a_window_index_job_waits_saying_so_and_can_be_cancelled_while_waiting(tmp_path):
    from app.core.api import Library
    from tests.builders.fake_embedder import FakeEmbedder

    db, release = tmp_path / "lib.sqlite", tmp_path / "release"
    session = Library(db, embedder=FakeEmbedder())
    holder = hold_lock(db, release, tmp_path)
    stop = []
    job = session.index_job([tmp_path], should_stop=lambda: bool(stop))
    first = next(job)
    assert f"pid {holder.pid}) is indexing" in first.message and "waiting" in first.message
    stop.append(True)
    with pytest.raises(StopIteration) as end:
        next(job)
    assert end.value.value is None and session.libraries() == []  # nothing was indexed or added
    release.touch()
    assert holder.wait(timeout=60) == 0
    session.close()
