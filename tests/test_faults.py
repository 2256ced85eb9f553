"""A full disk at every write path: one typed error naming the volume and the space to free, and
nothing finished is lost. SQLite's own SQLITE_FULL comes from `PRAGMA max_page_count` (no privileges
needed); free space comes from a fake `free_bytes` (os.statvfs); one test fills a real tmpfs."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess

import numpy as np
import pytest

from app.core import faults
from app.core import store as store_mod
from app.core.backends import l2_normalize
from app.core.faults import MB, DiskFullError, is_disk_full, volume_of
from app.core.indexer import index
from app.core.store import Store
from tests.builders.fake_embedder import FakeEmbedder
from tests.builders.images import make_library
from tests.builders.jobs import run_to_end


def limit_pages(conn: sqlite3.Connection, extra: int) -> None:
    """Let the file grow by only `extra` pages: SQLite then answers SQLITE_FULL, as on a full disk."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra}")


def test_the_message_names_the_volume_the_space_and_what_was_kept(tmp_path):
    e = DiskFullError(tmp_path / "not yet" / "lib.sqlite", 5 * MB + 1)
    assert str(e) == (
        f"the disk holding {volume_of(tmp_path)} is full: free about 6 MB and run again; "
        "nothing indexed so far was lost"
    )
    assert os.path.ismount(e.volume) and e.needed == 5 * MB + 1


def test_disk_full_is_recognised_from_the_os_sqlite_and_native_writers(tmp_path):
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert is_disk_full(
        RuntimeError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )
    )
    conn = sqlite3.connect(tmp_path / "x.sqlite")
    conn.execute("CREATE TABLE t (b BLOB)")
    limit_pages(conn, 1)
    with pytest.raises(sqlite3.Error) as e:
        conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * 4000,)] * 10)
    assert is_disk_full(e.value) and not is_disk_full(sqlite3.OperationalError("database is locked"))


def _images(s: Store, n: int) -> None:
    with s.transaction() as conn:
        root = s.add_root("/photos", 0.0)
        conn.executemany(
            "INSERT INTO images (id, root_id, path, status) VALUES (?, ?, ?, 'ok')",
            [(i, root, f"/photos/{i}.jpg") for i in range(1, n + 1)],
        )


def test_a_store_write_on_a_full_disk_rolls_back_its_batch_and_keeps_the_rest(tmp_path):
    s = Store(tmp_path / "lib.sqlite")
    _images(s, 200)
    vecs = l2_normalize(np.random.default_rng(0).standard_normal((200, 512)).astype(np.float32))
    with s.transaction():
        s.put_embeddings("m", range(1, 11), vecs[:10])
    limit_pages(s.conn, 3)  # 1.5 KB a row: room for a few rows, not for 100
    with pytest.raises(DiskFullError, match="nothing indexed so far was lost") as e:
        with s.transaction():
            s.put_embeddings("m", range(11, 111), vecs[10:110])
    assert e.value.volume == volume_of(tmp_path)
    assert not s.conn.in_transaction
    assert s.embedding_rows("m")[0].tolist() == list(range(1, 11))  # the failed batch left nothing behind
    assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    s.close()


class FullAfter:
    """Wraps store._connect: connections to the library get `pages` pages of room after the schema."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.real = store_mod._connect

    def __call__(self, path):
        conn = self.real(path)
        if self.pages is not None:
            from app.core.store import migrate

            migrate(conn)
            limit_pages(conn, self.pages)
        return conn


def test_index_on_a_filling_disk_keeps_every_finished_batch_and_a_rerun_resumes(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    n = len(make_library(root, 40))
    db = tmp_path / "lib.sqlite"
    full = FullAfter(12)
    monkeypatch.setattr(store_mod, "_connect", full)
    emb = FakeEmbedder(dim=512)
    store = Store(db)
    with pytest.raises(DiskFullError, match="nothing indexed so far was lost"):
        for _ in index(store, emb, [root], batch_size=4, workers=1):
            pass
    kept = len(store.embedding_rows(emb.model_id)[0])
    store.close()
    assert 0 < kept < n, kept
    full.pages = None  # space freed
    with Store(db) as store:
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        summary = run_to_end(index(store, emb, [root], batch_size=4, workers=1))
        assert summary.embedded == n - kept and summary.skipped == kept
        assert len(store.embedding_rows(emb.model_id)[0]) == n
    print(f"disk full mid-index: {kept}/{n} embeddings kept; the rerun embedded the other {n - kept}")


def test_cli_index_on_a_full_disk_prints_one_line_and_exits_1(tmp_path, monkeypatch, capsys):
    from app.cli import main
    from app.core import api

    root = tmp_path / "photos"
    make_library(root, 24)
    monkeypatch.setattr(store_mod, "_connect", FullAfter(8))
    monkeypatch.setattr(api, "open_embedder", lambda *a, **k: FakeEmbedder(dim=512))
    code = main(["--db", str(tmp_path / "lib.sqlite"), "index", str(root), "--batch-size", "4"])
    err = capsys.readouterr().err
    assert code == 1
    line = [ln for ln in err.splitlines() if ln.startswith("fovea:")][-1]
    assert line.startswith(f"fovea: the disk holding {volume_of(tmp_path)} is full: free about ")
    assert line.endswith("MB and run again; nothing indexed so far was lost")
    assert "Traceback" not in err and "OperationalError" not in err


def test_thumbnail_cache_on_a_full_disk_leaves_nothing_and_the_picture_still_renders(tmp_path, monkeypatch):
    from PIL import Image

    from app.core.thumbnails import ensure_thumbnail, render_thumbnail

    src = make_library(tmp_path / "photos", 1)[0]
    cache = tmp_path / "thumbs"
    real_save = Image.Image.save

    def save(self, fp, *a, **k):
        if hasattr(fp, "fileno") and os.path.realpath(f"/proc/self/fd/{fp.fileno()}").startswith(str(cache)):
            fp.write(b"half")  # a partial write into the cache, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *a, **k)

    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(DiskFullError, match="thumbnails are shown without being cached"):
        ensure_thumbnail(src, cache, 64)
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    assert max(render_thumbnail(src, 64).size) == 64


def _registry_files():
    from app.core.model_pull import RemoteFile

    return [
        RemoteFile("config.json", 1000),
        RemoteFile("model.safetensors", 600 * MB, "0" * 64),
        RemoteFile("tokenizer.json", 2 * MB),
    ]


class NoFetch:
    def __init__(self, error: BaseException | None = None) -> None:
        self.fetched = 0
        self.error = error

    def list_files(self, repo_id):
        return _registry_files()

    def fetch(self, repo_id, files, dest):
        self.fetched += 1
        if self.error:
            (dest / "model.safetensors.incomplete").write_bytes(b"x" * 1000)
            raise self.error


def test_a_pull_checks_free_space_before_downloading(tmp_path, monkeypatch):
    from app.core.model_pull import pull, room_needed

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(faults, "free_bytes", lambda path: 700 * MB)  # an os.statvfs fake
    d = NoFetch()
    with pytest.raises(DiskFullError, match="nothing was downloaded or installed") as e:
        list(pull("clip-vit-b32", downloader=d, verify=False))
    assert d.fetched == 0
    need = room_needed(_registry_files()) - 700 * MB  # 602 MB download + 1200 MB converted + margin
    assert e.value.needed == need and f"free about {-(-need // MB)} MB" in str(e.value)


def test_a_pull_that_fills_the_disk_keeps_the_partial_download(tmp_path, monkeypatch):
    from app.core.model_pull import pull

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(faults, "free_bytes", lambda path: 10_000 * MB)
    d = NoFetch(OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DiskFullError, match="what was downloaded so far is kept"):
        list(pull("clip-vit-b32", downloader=d, verify=False))
    assert (tmp_path / "downloads" / "clip-vit-b32" / "model.safetensors.incomplete").is_file()


def test_a_conversion_that_fills_the_disk_is_one_clear_error(tmp_path, monkeypatch):
    from app.core import model_install
    from app.core.model_pull import CONVERT_KEPT

    def full(src, dst, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(model_install, "_loader", lambda kind: full)
    with pytest.raises(DiskFullError, match="nothing was installed"):
        model_install.convert_model(tmp_path / "src", tmp_path / "models" / "x", verify=False)
    with pytest.raises(DiskFullError, match="the download is kept"):  # what `models pull` passes
        model_install.convert_model(
            tmp_path / "src", tmp_path / "models" / "x", verify=False, kept=CONVERT_KEPT
        )


def _can_mount() -> str | None:
    """None when this process may mount a tmpfs, else why not."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "mounting a tmpfs needs root (CI runs as root)"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


@pytest.fixture
def small_tmpfs(tmp_path):
    reason = _can_mount()
    if reason:
        pytest.skip(reason)
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode} (a container without CAP_SYS_ADMIN)"
        )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_real_full_tmpfs_keeps_finished_batches_and_a_rerun_finishes(
    small_tmpfs, tmp_path, monkeypatch, capsys
):
    from app.cli import main
    from app.core import api

    root = tmp_path / "photos"
    n = len(make_library(root, 60))
    monkeypatch.setattr(api, "open_embedder", lambda *a, **k: FakeEmbedder(dim=1024))  # ~3 KB a row
    db = small_tmpfs / "lib.sqlite"
    filler = small_tmpfs / "other files"
    filler.write_bytes(
        b"\0" * (os.statvfs(small_tmpfs).f_bavail * os.statvfs(small_tmpfs).f_frsize - 400_000)
    )
    code = main(["--db", str(db), "index", str(root), "--batch-size", "4"])
    err = capsys.readouterr().err
    assert code == 1 and f"fovea: the disk holding {small_tmpfs} is full: free about " in err, err
    with Store(db) as s:
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = len(s.embedding_rows("fake-clip")[0])
    assert 0 < kept < n
    filler.unlink()  # the person frees space and runs the same command again
    assert main(["--db", str(db), "index", str(root), "--batch-size", "4"]) == 0
    with Store(db) as s:
        assert len(s.embedding_rows("fake-clip")[0]) == n
    print(f"1 MB tmpfs, 400 KB free: {kept}/{n} embeddings kept at the fault; the rerun finished all {n}")


def test_scan_and_embed_interleave_so_a_fault_during_the_scan_keeps_the_embeddings_before_it(
    tmp_path, monkeypatch
):
    from app.core import indexer, library

    root = tmp_path / "photos"
    n = len(make_library(root, 64))
    monkeypatch.setattr(indexer, "INTERLEAVE_MIN", 8)
    chunks = []

    def apply_in_small_chunks(store, scans, now):
        for k, item in enumerate(library.apply_changes(store, scans, now, chunk=16)):
            chunks.append(k)
            if k == 2:  # the disk fills while the scan is at its fourth chunk: real SQLITE_FULL from here on
                limit_pages(store.conn, 0)
            yield item

    monkeypatch.setattr(indexer, "apply_changes", apply_in_small_chunks)
    emb = FakeEmbedder(dim=512)
    store = Store(tmp_path / "lib.sqlite")
    phases = []
    with pytest.raises(DiskFullError):
        for p in index(store, emb, [root], batch_size=4, workers=1):
            phases.append(p.phase)
    kept = len(store.embedding_rows(emb.model_id)[0])
    rows = store.conn.execute("SELECT count(*) FROM images").fetchone()[0]
    store.close()
    assert phases.index("embed") < len(phases) - 1 - phases[::-1].index("scan")  # embedding began mid-scan
    assert rows == 48 and kept == 32  # 3 chunks scanned; the embeddings of the first two were committed
    monkeypatch.setattr(indexer, "apply_changes", library.apply_changes)
    with Store(tmp_path / "lib.sqlite") as store:
        summary = run_to_end(index(store, emb, [root], batch_size=4, workers=1))
        assert summary.skipped == kept and summary.embedded == n - kept
