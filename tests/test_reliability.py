"""Hostile files, vanishing files, killed indexers and quantization: nothing crashes, nothing is lost."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.indexer import index
from app.core.store import Store, path_to_text
from app.core.vectors import dequantize_int8, quantize_int8
from tests.builders.fake_embedder import FakeEmbedder
from tests.builders.images import ERROR, LOOP, OK, SKIP, hostile_corpus, make_library
from tests.builders.jobs import run_to_end

REPO = Path(__file__).resolve().parents[1]


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every regular file under root (links not followed), to prove originals are untouched."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            p = os.path.join(folder, name)
            if os.path.isfile(p) and not os.path.islink(p) and os.access(p, os.R_OK):
                with open(p, "rb") as f:
                    out[p] = hashlib.sha256(f.read()).hexdigest()
    return out


def last(gen):
    """Run an index() generator to the end; it returns the summary."""
    return run_to_end(gen)


def test_hostile_corpus_is_indexed_or_recorded_and_never_touched(tmp_path):
    root = tmp_path / "lib"
    expected = hostile_corpus(root)
    make_library(root / "photos", 6)
    assert len(expected) >= 20
    before = tree_digest(root)
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    summary = last(index(store, emb, [root], batch_size=4, workers=2))
    rows = {r[0]: r[1:] for r in store.conn.execute("SELECT path, status, error, id FROM images")}
    errors = {path_to_text(p): reason for p, reason, _ in store.errors()}
    embedded = set(store.embedding_rows(emb.model_id)[0].tolist())
    for path, outcome in expected.items():
        key = path_to_text(path)
        if outcome == OK:
            assert rows[key][0] == "ok" and rows[key][2] in embedded, (path, rows.get(key))
        elif outcome == ERROR:
            assert rows[key][0] == "error" and rows[key][1] and errors[key] == rows[key][1], path
        elif outcome == SKIP:
            assert key not in rows, path
        elif outcome == LOOP:
            assert key not in rows and "loop" in errors[key], path
    n_ok = sum(o == OK for o in expected.values()) + 6
    assert summary.embedded == n_ok == len(embedded)
    assert tree_digest(root) == before
    again = last(index(store, emb, [root], batch_size=4))
    assert again.embedded == 0 and emb.embedded == n_ok and tree_digest(root) == before


def test_file_vanishing_between_scan_and_decode_is_marked_missing(tmp_path):
    from app.core.decode_pool import DecodeJob, DecodePool

    root = tmp_path / "lib"
    make_library(root, 6)
    victim = (root / "img_0002.jpg").rename(root / "vanish.jpg")  # the test decoder deletes it first
    store = Store(":memory:")
    with DecodePool(DecodeJob(min_side=64, decoder="tests.builders.bad_decoders:decode"), workers=2) as pool:
        summary = last(index(store, FakeEmbedder(), [root], batch_size=2, pool=pool))
    assert summary.embedded == 5 and summary.missing == 1 and summary.errors == 0
    status = store.conn.execute("SELECT status FROM images WHERE path = ?", (str(victim),)).fetchone()[0]
    assert status == "missing"


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from app.core.indexer import index
    from app.core.store import Store
    from tests.builders.fake_embedder import FakeEmbedder

    class Slow(FakeEmbedder):
        def embed_pixels(self, pixels):
            time.sleep(0.05)  # leave the parent time to kill us mid-run
            return super().embed_pixels(pixels)

    print("start", flush=True)
    for p in index(Store(sys.argv[1]), Slow(), [Path(sys.argv[2])], batch_size=2, workers=2):
        if p.phase == "embed" and p.done:
            print("batch", p.done, flush=True)
    print("finished", flush=True)
    """
)


def kill_after(db: Path, root: Path, batches: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    seen = 0
    for line in proc.stdout:
        if line.startswith("batch"):
            seen += 1
        if (line.startswith("start") and batches == 0) or (batches and seen >= batches):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


def embedding_snapshot(db: Path) -> dict[int, tuple[int, bytes]]:
    with Store(db) as s:
        rows = s.conn.execute("SELECT image_id, rowid, vec_i8 FROM embeddings").fetchall()
    return {i: (r, v) for i, r, v in rows}


def check_consistent(db: Path, n_files: int) -> None:
    with Store(db) as s:
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count, distinct = s.conn.execute("SELECT count(*), count(DISTINCT path) FROM images").fetchone()
        assert count in (0, n_files) and distinct == count  # the scan commits all new rows together


def test_killed_indexer_loses_at_most_a_batch_and_reuses_finished_work(tmp_path):
    root = tmp_path / "lib"
    n = len(make_library(root, 24))
    before = tree_digest(root)
    db = tmp_path / "db.sqlite"
    snap: dict[int, tuple[int, bytes]] = {}
    for batches in (0, 1, 3):
        kill_after(db, root, batches)
        check_consistent(db, n)
        now = embedding_snapshot(db)
        assert all(now[i] == snap[i] for i in snap)  # nothing finished earlier was redone
        assert len(now) >= len(snap) + 2 * batches  # every reported batch was committed
        snap = now
    emb = FakeEmbedder()
    with Store(db) as s:
        summary = last(index(s, emb, [root], batch_size=2))
    check_consistent(db, n)
    assert emb.embedded == n - len(snap) == summary.embedded and summary.skipped == len(snap)
    final = embedding_snapshot(db)
    assert len(final) == n and all(final[i] == snap[i] for i in snap)
    assert tree_digest(root) == before


@settings(max_examples=60, deadline=None)
@given(d=st.integers(64, 1024), seed=st.integers(0, 2**32 - 1), spike=st.booleans())
def test_int8_round_trip_keeps_cosine(d, seed, spike):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((3, d)).astype(np.float32)
    if spike:  # an outlier dimension 8x the rest, as CLIP has; past ~10x the cosine dips under 0.999
        # 8x the rows' RMS, not 8x a normal draw (a 3-sigma draw times 8 is the 24x case the bound excludes)
        v[:, 0] = 8 * np.sign(v[:, 0]) * np.sqrt((v[:, 1:] ** 2).mean(1))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q, scale = quantize_int8(v)
    back = dequantize_int8(q, scale)
    cos = (back * v).sum(1) / np.linalg.norm(back, axis=1)
    assert q.dtype == np.int8 and cos.min() >= 0.999
