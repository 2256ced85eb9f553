"""`--engine ray`: a local Ray (2 CPUs, loopback only) gives the local indexer's vectors, errors and resume.

The local indexer is the reference: the same demo images and hostile files are indexed both ways and
compared (vectors before storage, max-abs <= 1e-5; statuses, reasons and the errors table exactly).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.core import indexer
from app.core.backends import open_embedder
from app.core.demo import write_demo_library
from app.core.indexer import index
from app.core.path_map import PathMap
from app.core.paths import demo_model_dir
from app.core.store import Store
from tests.builders.images import hostile_corpus
from tests.builders.jobs import run_to_end

ray = pytest.importorskip("ray")
from app.core.cluster import ClusterOptions, RayEngine  # noqa: E402 - only with ray installed

TOL = 1e-5  # the bound on normalised vectors


@pytest.fixture(scope="module")
def local_ray():
    """One private Ray for the module: 2 CPUs, no dashboard; what `ray.init` on a CI runner can do."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def embedder():
    return open_embedder(demo_model_dir(), "mlx")


def _index(db: Path, embedder, roots, engine=None, **kw):
    """Index into `db`; returns (summary, {path: float32 vector as handed to the store})."""
    seen: dict[str, np.ndarray] = {}
    real = indexer.commit_batch

    def spy(store, model_id, batch, vectors, failed, summary):
        for (item, _), v in zip(batch, vectors if vectors is not None else [], strict=True):
            seen[str(item.path)] = np.array(v, dtype=np.float32)
        return real(store, model_id, batch, vectors, failed, summary)

    indexer.commit_batch = spy
    store = Store(db)
    try:
        summary = run_to_end(index(store, embedder, roots, engine=engine, **kw))
    finally:
        indexer.commit_batch = real
        store.close()
    return summary, seen


def _rows(db: Path) -> dict[str, tuple]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT path, status, error, width, height, taken_at, camera, decode_notes FROM images"
        ).fetchall()
        errors = conn.execute("SELECT path, reason FROM errors").fetchall()
    return {r[0]: r[1:] for r in rows}, sorted(errors)


def test_path_map_rewrites_whole_components_longest_prefix_first():
    m = PathMap.parse(["/Volumes/Photos=/mnt/photos", "/Volumes/Photos/raw=/fast/raw"])
    assert m.to_worker("/Volumes/Photos/2019/a.jpg") == "/mnt/photos/2019/a.jpg"
    assert m.to_worker("/Volumes/Photos/raw/b.dng") == "/fast/raw/b.dng"
    assert m.to_worker("/Volumes/PhotosOld/c.jpg") == "/Volumes/PhotosOld/c.jpg"  # not a component match
    assert m.to_worker("/Volumes/Photos") == "/mnt/photos"
    with pytest.raises(Exception, match="LOCAL=REMOTE"):
        PathMap.parse(["/no/equals"])
    with pytest.raises(Exception, match="absolute"):
        PathMap.parse(["relative=/x"])


def test_ray_embeddings_equal_the_local_indexer_on_demo_images(local_ray, embedder, tmp_path):
    lib = tmp_path / "lib"
    list(write_demo_library(lib, n=240, size=96))
    local, want = _index(tmp_path / "local.sqlite", embedder, [lib])
    remote, got = _index(
        tmp_path / "ray.sqlite", embedder, [lib], engine=RayEngine(ClusterOptions(backend="mlx"))
    )
    assert local.embedded == remote.embedded == 240 and remote.errors == 0
    assert got.keys() == want.keys()
    worst = max(float(np.abs(got[p] - want[p]).max()) for p in want)
    assert worst <= TOL, worst
    assert _rows(tmp_path / "ray.sqlite") == _rows(tmp_path / "local.sqlite")  # sizes, dates, cameras, notes


def test_ray_records_the_same_errors_as_local_for_hostile_files(local_ray, embedder, tmp_path):
    expected = hostile_corpus(tmp_path / "hostile")
    local, _ = _index(tmp_path / "local.sqlite", embedder, [tmp_path / "hostile"])
    remote, _ = _index(
        tmp_path / "ray.sqlite",
        embedder,
        [tmp_path / "hostile"],
        engine=RayEngine(ClusterOptions(backend="mlx")),
    )
    images, errors = _rows(tmp_path / "ray.sqlite")
    assert (images, errors) == _rows(tmp_path / "local.sqlite")
    assert remote.errors == local.errors >= 8  # zero, truncated, text, random, bomb, huge, pcx, links ...
    assert {s for s, *_ in images.values()} >= {"ok", "error"}
    assert len(expected) > 20


def test_path_map_sends_workers_the_mapped_paths(local_ray, embedder, tmp_path):
    """Workers open the mapped path: the photos moved to where only the map points still index."""
    lib = tmp_path / "here"
    list(write_demo_library(lib, n=12, size=64))
    elsewhere = tmp_path / "there"
    lib.rename(elsewhere)
    lib.mkdir()
    for f in elsewhere.iterdir():  # the driver's copies are empty: only the mapped ones decode
        (lib / f.name).write_bytes(b"")
    engine = RayEngine(ClusterOptions(path_map=PathMap.parse([f"{lib}={elsewhere}"]), backend="mlx"))
    summary, got = _index(tmp_path / "ray.sqlite", embedder, [lib], engine=engine)
    assert summary.errors == 0 and len(got) == 12


DRIVER = """
import sys, time
from pathlib import Path
from app.core.backends import open_embedder
from app.core.cluster import ClusterOptions, RayEngine
from app.core.indexer import index
from app.core.paths import demo_model_dir
from app.core.store import Store
import ray
ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
engine = RayEngine(ClusterOptions(backend="mlx", chunk=8))

class Slowed:  # the driver takes its time, so the test's SIGKILL lands mid-run
    interleave_min = engine.interleave_min
    def run(self, paths, embedder):
        for out in engine.run(paths, embedder):
            time.sleep(0.05)
            yield out

for _ in index(Store(Path(sys.argv[1])), open_embedder(demo_model_dir(), "mlx"), [Path(sys.argv[2])],
               batch_size=8, engine=Slowed()):
    pass
"""


def _embedded(db: Path) -> dict[int, int]:
    """image_id -> rowid of its embedding (a re-embed replaces the row and changes the rowid)."""
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            return dict(conn.execute("SELECT image_id, rowid FROM embeddings").fetchall())
    except sqlite3.OperationalError:  # the driver has not created the tables yet
        return {}


def test_driver_killed_mid_run_keeps_committed_work_and_resume_skips_it(embedder, tmp_path, request):
    lib, db = tmp_path / "lib", tmp_path / "lib.sqlite"
    list(write_demo_library(lib, n=160, size=64))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(db), str(lib)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: the Ray it started is cleaned up with it afterwards
    )
    deadline = time.monotonic() + 240
    try:
        while len(_embedded(db)) < 24:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the Ray driver committed nothing in time"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
        try:  # the orphaned Ray agents of the killed driver (only this test's process group)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = _embedded(db)
    assert 24 <= len(before) < 160, "the kill must land mid-run"
    request.getfixturevalue("local_ray")  # this process's own Ray, for the resume
    sent: list[Path] = []
    engine = RayEngine(ClusterOptions(backend="mlx"))
    real_run = engine.run

    def counting(paths, emb):
        sent.extend(paths)
        return real_run(paths, emb)

    engine.run = counting
    summary, _ = _index(db, embedder, [lib], engine=engine)
    after = _embedded(db)
    assert len(after) == 160 and summary.errors == 0
    assert len(sent) == 160 - len(before) == summary.embedded  # finished files are not sent again
    assert all(after[i] == rowid for i, rowid in before.items())  # nor re-embedded: their rows are untouched


def test_cli_index_engine_ray_stores_what_the_workers_embedded(local_ray, tmp_path, capsys, monkeypatch):
    from app.cli import main

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    lib = tmp_path / "photos"
    list(write_demo_library(lib, n=20, size=64))
    (lib / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    db = str(tmp_path / "lib.sqlite")
    assert main(["--db", db, "--backend", "mlx", "index", str(lib), "--engine", "ray"]) == 0
    err = capsys.readouterr().err
    assert "embedding on Ray" in err and "indexed: 20 embedded" in err and "1 errors" in err
    assert "broken.jpg" in err  # the per-file error is reported as the local indexer reports it
    assert main(["--db", db, "index", str(lib), "--address", "ray://nowhere:1"]) == 2  # without --engine ray


@pytest.mark.slow  # each death restarts an actor that loads the model again
# First in the scan order, the poison's block exhausts its retries while other blocks still wait for the
# embed actor (the case that stalled with a bounded number of actor restarts); last, when they are done.
@pytest.mark.parametrize("name", ["0-poison.jpg", "poison.jpg"])
def test_a_file_that_keeps_killing_its_worker_is_recorded_and_the_rest_embedded(
    local_ray, embedder, tmp_path, name
):
    from tests.builders.cluster_faults import POISON_WIDTH, DyingEmbedActor
    from tests.builders.images import photo, save_jpeg

    lib = tmp_path / "lib"
    list(write_demo_library(lib, n=30, size=64))
    save_jpeg(lib / name, photo(POISON_WIDTH, 50, seed=5))
    engine = RayEngine(ClusterOptions(backend="mlx", chunk=8))
    engine.embed_actor = DyingEmbedActor
    summary, got = _index(tmp_path / "ray.sqlite", embedder, [lib], engine=engine)
    assert summary.embedded == 30 and summary.errors == 1 and len(got) == 30
    images, errors = _rows(tmp_path / "ray.sqlite")
    ((path, reason),) = errors
    assert path.endswith(name) and "worker failed" in reason
    assert images[path][0] == "error"
