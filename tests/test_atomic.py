"""atomic_write: whole files or none, unique temporaries, nothing left behind."""

from __future__ import annotations

import os
import threading

import pytest

from app.core import atomic
from app.core.atomic import atomic_write


def test_the_new_content_replaces_the_file_and_no_temporary_is_left(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with atomic_write(path) as f:
        f.write(b"new")
        assert path.read_bytes() == b"old"  # readers see the old file until the block ends
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_an_exception_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write(b"half")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_concurrent_writers_of_one_path_each_finish_with_a_whole_file(tmp_path):
    path, errors = tmp_path / "thumb.jpg", []
    start = threading.Barrier(8)

    def write(i: int) -> None:
        try:
            start.wait()
            with atomic_write(path) as f:
                f.write(bytes([i]) * 100_000)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = path.read_bytes()
    assert len(data) == 100_000 and len(set(data)) == 1  # one writer's whole file, never a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thumb.jpg"]


def test_durable_syncs_before_the_rename(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: calls.append(os.path.exists(tmp_path / "i.bin")))
    with atomic_write(tmp_path / "i.bin", durable=True) as f:
        f.write(b"x")
    with atomic_write(tmp_path / "s.json") as f:
        f.write(b"{}")
    assert calls == [False]  # synced once, while the target did not exist yet
