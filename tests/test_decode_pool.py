"""Decoders isolated in worker processes: crashes and hangs cost one file, messages stay off the terminal."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core.decode import open_image
from app.core.decode_pool import Decoded, DecodeJob, DecodePool, DecodeWorkersError, Failed
from app.core.indexer import index
from app.core.store import Store
from tests.builders.fake_embedder import FakeEmbedder
from tests.builders.images import photo, save_jpeg
from tests.builders.jobs import run_to_end

BAD = "tests.builders.bad_decoders:decode"
SLOW = "tests.builders.bad_decoders:slow_decode"


def files(folder: Path, names: list[str]) -> list[Path]:
    return [save_jpeg(folder / n, photo(64, 48, k)) for k, n in enumerate(names)]


def test_a_crash_an_abort_and_a_hang_cost_one_file_each_and_the_run_goes_on(tmp_path, capfd):
    names = ["a.jpg", "segfault.jpg", "b.jpg", "abort.jpg", "c.jpg", "hang.jpg", "d.jpg", "e.jpg"]
    paths = files(tmp_path, names)
    with DecodePool(DecodeJob(min_side=32, decoder=BAD), workers=2, timeout_s=3) as pool:
        got = list(pool.run(paths, depth=4))
        assert pool.restarts == 3
    assert [i for i, _ in got] == list(range(len(names)))  # in order, each once
    outcome = {names[i]: o for i, o in got}
    assert outcome["segfault.jpg"] == Failed(f"decoder crashed (signal {int(signal.SIGSEGV)})")
    assert outcome["abort.jpg"] == Failed(f"decoder crashed (signal {int(signal.SIGABRT)})")
    assert outcome["hang.jpg"] == Failed("decoder timed out after 3 s")
    for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"):
        assert isinstance(outcome[n], Decoded) and outcome[n].pixels.shape == (48, 64, 3)
    out = capfd.readouterr()
    assert out.out == "" and out.err == ""


def test_warnings_and_native_stderr_are_captured_per_file(tmp_path, capfd):
    paths = files(tmp_path, ["quiet.jpg", "noisy.jpg", "quiet2.jpg"])
    with DecodePool(DecodeJob(min_side=32, decoder=BAD), workers=1) as pool:
        got = dict(pool.run(paths, depth=2))
    assert got[0].notes is None and got[2].notes is None
    assert got[1].notes.splitlines() == [
        "UserWarning: Corrupt EXIF data.  Expecting to read 12 bytes but only got 4.",
        "TIFFFillStrip: Read error on strip 0; got 0 bytes, expected 4096.",
    ]
    assert capfd.readouterr().err == ""


def test_workers_return_the_preprocessed_model_input_when_the_processor_travels(tmp_path):
    """The processor gets the photo's full size with its draft-decoded pixels (a 261x193 JPEG is decoded
    at 1/2, 131x97), so it resizes on the full photo's grid (tests/test_reduced_decode.py)."""
    from mlx_models.clip.image_processor import ImageProcessor

    proc = ImageProcessor.from_dict({"size": 32, "crop_size": 32})
    path = save_jpeg(tmp_path / "x.jpg", photo(261, 193, 0))
    with DecodePool(DecodeJob(min_side=64, preprocess=proc), workers=1) as pool:
        ((_, out),) = pool.run([path], depth=1)
    assert out.pixels.dtype == np.float32 and out.pixels.shape == (32, 32, 3)
    d = open_image(path, min_side=64)
    assert d.image.size == (131, 97) and (d.width, d.height) == (261, 193)
    np.testing.assert_array_equal(out.pixels, proc(d.image, (261, 193)))
    assert not np.array_equal(out.pixels, proc(d.image))  # the full size made a difference


def test_a_pool_whose_workers_cannot_start_fails_loudly_not_file_by_file(tmp_path):
    paths = files(tmp_path, ["x.jpg", "y.jpg"])
    with DecodePool(DecodeJob(min_side=32, decoder="no_such_module:decode"), workers=1) as pool:
        with pytest.raises(DecodeWorkersError, match="before their first file"):
            list(pool.run(paths, depth=2))


def test_indexing_records_crashes_hangs_and_notes_and_keeps_the_rest(tmp_path, capfd):
    names = ["ok1.jpg", "segfault.jpg", "hang.jpg", "noisy.jpg", "ok2.jpg"]
    files(tmp_path / "lib", names)
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    with DecodePool(DecodeJob(min_side=64, decoder=BAD), workers=2, timeout_s=3) as pool:
        s = run_to_end(index(store, emb, [tmp_path / "lib"], batch_size=2, workers=2, pool=pool))
    assert (s.embedded, s.errors) == (3, 2)
    rows = {
        Path(p).name: (st, e, n)
        for p, st, e, n in store.conn.execute("SELECT path, status, error, decode_notes FROM images")
    }
    assert rows["segfault.jpg"][:2] == ("error", f"decoder crashed (signal {int(signal.SIGSEGV)})")
    assert rows["hang.jpg"][:2] == ("error", "decoder timed out after 3 s")
    assert rows["noisy.jpg"][0] == "ok" and "TIFFFillStrip" in rows["noisy.jpg"][2]
    assert rows["ok1.jpg"] == ("ok", None, None)
    assert {Path(p).name for p, _, _ in store.errors()} == {"segfault.jpg", "hang.jpg"}
    assert capfd.readouterr().err == ""


def test_thumbnails_decode_in_a_worker_so_a_crashing_file_costs_only_its_thumbnail(tmp_path, capfd):
    from concurrent.futures import ThreadPoolExecutor

    from app.core.decode import DecodeError
    from app.core.thumbnails import ensure_thumbnail

    good, bad = files(tmp_path, ["good.jpg", "segfault.jpg"])
    cache = tmp_path / "thumbs"
    with pytest.raises(DecodeError, match=r"decoder crashed \(signal"):
        ensure_thumbnail(bad, cache, 32, decoder=BAD)
    with ThreadPoolExecutor(3) as ex:  # the GUI's loader threads share the workers
        thumbs = list(ex.map(lambda p: ensure_thumbnail(p, cache, 32, decoder=BAD), [good] * 3))
    assert len(set(thumbs)) == 1 and Image.open(thumbs[0]).size == (32, 24)
    assert capfd.readouterr().err == ""


def test_prestarted_workers_are_adopted_by_the_next_pool_and_stay_isolated(tmp_path, capfd, monkeypatch):
    """`prestart` spawns workers before the job is known (while the model loads); the next pool takes
    them, gives them its job, and a crash in one still costs only its file."""
    from app.core import decode_pool

    monkeypatch.setattr(decode_pool, "_SHARED", {})  # as in a fresh process: no pool kept from earlier tests
    decode_pool.close_spares()
    decode_pool.prestart(2)
    spares = {s.proc.pid for s in decode_pool._SPARES}
    assert len(spares) == 2
    paths = files(tmp_path, ["a.jpg", "segfault.jpg", "b.jpg"])
    with DecodePool(DecodeJob(min_side=32, decoder=BAD), workers=2, timeout_s=10) as pool:
        assert {s.proc.pid for s in pool._slots} == spares and not decode_pool._SPARES
        got = dict(pool.run(paths, depth=3))
    assert isinstance(got[0], Decoded) and isinstance(got[2], Decoded)
    assert got[1] == Failed(f"decoder crashed (signal {int(signal.SIGSEGV)})")
    assert capfd.readouterr().err == ""


def test_a_spare_imports_the_processor_modules_before_it_has_a_job(tmp_path, monkeypatch):
    """`prestart(preload=...)`: the spare imports what unpickling the job will need while the model
    loads, so the first file does not wait for it; the indexer preloads both families' processors."""
    import time

    from app.core import decode_pool, indexer

    mark = tmp_path / "imported"
    monkeypatch.setenv("FOVEA_TEST_PRELOAD_MARK", str(mark))
    monkeypatch.setattr(decode_pool, "_SHARED", {})
    decode_pool.close_spares()
    try:
        decode_pool.prestart(1, preload=("tests.builders.preload_probe",))
        (spare,) = decode_pool._SPARES
        deadline = time.monotonic() + 60
        while not mark.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.read_text() == str(spare.proc.pid)  # imported by the spare, and no job was ever sent
    finally:
        decode_pool.close_spares()
    # What the indexer preloads is where the embedders' shipped processors live (what the job pickles).
    from mlx_models.registry import family_module

    shipped = {family_module(t).ImageProcessor.__module__ for t in ("clip", "siglip")}
    assert set(indexer.PROCESSOR_MODULES) == shipped


def test_the_model_starts_on_the_first_decoded_files_without_waiting_for_a_whole_batch(tmp_path):
    """When the next file is not decoded yet, the indexer embeds what it holds (>= a quarter batch);
    a batch is still committed whole, and every file gets its own embedding."""
    files(tmp_path / "lib", [f"p{k:02d}.jpg" for k in range(12)])
    store, (emb, sizes) = Store(tmp_path / "db.sqlite"), counting_embedder()
    # One worker handing out one file at a time is slower than the consumer: it waits often.
    with DecodePool(DecodeJob(min_side=32, decoder=SLOW), workers=1) as pool:
        s = run_to_end(index(store, emb, [tmp_path / "lib"], batch_size=8, workers=1, pool=pool))
    assert s.embedded == 12 and sum(sizes) == 12
    assert 2 <= sizes[0] < 8 and len(sizes) > 2, sizes  # early parts of a batch, of at least 8 // 4 files
    assert_each_vector_is_its_files(store, emb, 12)  # the parts are stitched back in order


def counting_embedder() -> tuple[FakeEmbedder, list[int]]:
    """A FakeEmbedder that records the size of every model call."""
    emb, sizes = FakeEmbedder(), []
    real = emb.embed_pixels

    def counting(pixels):
        sizes.append(len(pixels))
        return real(pixels)

    emb.embed_pixels = counting
    return emb, sizes


def assert_each_vector_is_its_files(store: Store, emb: FakeEmbedder, n: int) -> None:
    """Every stored vector is its own file's, not a neighbour's."""
    rows = store.conn.execute(
        "SELECT i.path, e.vec_f16 FROM images i JOIN embeddings e ON e.image_id = i.id"
    ).fetchall()
    assert len(rows) == n
    for path, blob in rows:
        want = FakeEmbedder.embed_pixels(
            emb, emb.preprocess(open_image(Path(path), min_side=32).image)[None]
        )[0]
        np.testing.assert_allclose(np.frombuffer(blob, np.float16), want, atol=2e-3)


class ScriptedPool:
    """Stands in for DecodePool: decodes in order, and reports a wait (None) before each index in `waits`."""

    def __init__(self, preprocess, waits: set[int]) -> None:
        self.preprocess, self.waits = preprocess, waits

    def run(self, paths, depth, finish=None, *, report_waits=False):
        for i, path in enumerate(paths):
            if report_waits and i in self.waits:
                yield None
            d = open_image(path, min_side=32)
            yield i, Decoded(self.preprocess(d.image), d.width, d.height, d.taken_at, d.camera)


def test_after_an_early_part_the_model_gets_whole_batches_across_commits(tmp_path):
    """An early call on what is decoded (file 3 is not, when the model is free) does not leave the rest
    of its batch as a small call of its own: later calls take `batch_size` rows across commit boundaries,
    commits still hold `batch_size` files each, and every file gets its own vector."""
    files(tmp_path / "lib", [f"p{k:02d}.jpg" for k in range(20)])
    store, (emb, sizes) = Store(tmp_path / "db.sqlite"), counting_embedder()
    pool = ScriptedPool(emb.preprocess, waits={3})
    job = index(store, emb, [tmp_path / "lib"], batch_size=8, workers=1, pool=pool)
    committed = [p.done for p in job if p.phase == "embed" and p.done]  # after each commit
    assert sizes == [3, 8, 8, 1], sizes  # the old rule: [3, 5, 8, 4] (the rest of each batch on its own)
    assert committed == [8, 16, 20], committed
    assert_each_vector_is_its_files(store, emb, 20)
