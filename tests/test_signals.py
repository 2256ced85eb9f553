"""SIGTERM, SIGHUP and Ctrl-C sent to a real `fovea index` process: the batch in flight finishes (or,
on a second signal, rolls back), what was kept is printed, the exit code is 128 + the signal, and a
rerun picks up where it stopped."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.builders.images import make_library

REPO = Path(__file__).resolve().parents[1]

# The real CLI (`app.cli.main`: argument parsing, signal handlers, the index command) with a slow
# stand-in model, so that batches take long enough to be interrupted.
CHILD = textwrap.dedent(
    """
    import sys, time
    from app.core import api
    from tests.builders.fake_embedder import FakeEmbedder

    class Slow(FakeEmbedder):
        def embed_pixels(self, pixels):
            print("batch", flush=True)
            time.sleep(0.3)
            return super().embed_pixels(pixels)

    api.open_embedder = lambda *a, **k: Slow()
    from app.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def start(db: Path, root: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FOVEA_DATA_DIR": str(db.parent / "data")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, "--db", str(db), "index", str(root), "--batch-size", "2", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def wait_for_batches(proc: subprocess.Popen, n: int) -> None:
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("batch")
        if seen >= n:
            return
    pytest.fail(f"the indexer ended before {n} batches: {proc.stderr.read()}")


def counts(db: Path) -> tuple[int, int, str]:
    conn = sqlite3.connect(db)
    try:
        ok = conn.execute("SELECT count(*) FROM images WHERE status = 'ok'").fetchone()[0]
        emb = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        return ok, emb, conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_finishes_the_batch_in_flight_and_a_rerun_resumes(tmp_path, sig):
    root = tmp_path / "photos"
    n = len(make_library(root, 30))
    db = tmp_path / "lib.sqlite"
    proc = start(db, root)
    wait_for_batches(proc, 3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert f"{sig.name} received; stopping after the current batch" in err
    ok, emb, integrity = counts(db)
    assert integrity == "ok" and ok == emb and 0 < emb < n  # whole batches only, none half-written
    assert f"stopped by {sig.name}: {emb} images embedded this run are saved" in err
    rerun = start(db, root)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert counts(db)[:2] == (n, n) and f"{n - emb} embedded" in err


def test_a_second_signal_aborts_at_once_rolling_back_the_batch_in_flight(tmp_path):
    root = tmp_path / "photos"
    make_library(root, 30)
    db = tmp_path / "lib.sqlite"
    proc = start(db, root)
    wait_for_batches(proc, 2)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "the batch in flight was rolled back" in err
    ok, emb, integrity = counts(db)
    assert integrity == "ok" and ok == emb


def test_index_watch_stops_cleanly_on_sigterm(tmp_path):
    pytest.importorskip("watchdog")
    root = tmp_path / "photos"
    make_library(root, 4)
    db = tmp_path / "lib.sqlite"
    proc = start(db, root, "--watch")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the first pass is done and the watch runs
        try:
            if db.exists() and counts(db)[1] == 4:
                break
        except sqlite3.OperationalError:  # the file exists, its schema not yet
            pass
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "stopped watching (SIGTERM); everything indexed so far is saved" in err
    assert counts(db) == (4, 4, "ok")
