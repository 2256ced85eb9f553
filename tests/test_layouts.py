"""Mac library layouts (packages, ~/Library, Photos libraries, Fovea's own folders) and iCloud dataless files."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core import library
from app.core.indexer import index
from app.core.layouts import SF_DATALESS, access_hint, is_dataless
from app.core.library import FileEntry, WalkOptions, WalkStats, walk
from app.core.store import Store
from tests.builders.fake_embedder import FakeEmbedder
from tests.builders.images import photo, save_jpeg
from tests.builders.jobs import run_to_end
from tests.builders.real_photos import sha256s


def jpg(path: Path, seed: int = 0) -> Path:
    return save_jpeg(path, photo(48, 32, seed))


def run(store, folder, **kw):
    return run_to_end(index(store, FakeEmbedder(), [folder], batch_size=4, workers=1, **kw))


def test_walk_never_enters_packages_user_library_or_fovea_data(tmp_path):
    home = tmp_path / "home"
    jpg(home / "Pictures" / "keep.jpg")
    for pkg in [
        "Photos Library.photoslibrary/originals/A/x.jpg",
        "iPhoto Library.photolibrary/Masters/x.jpg",
        "Aperture.aplibrary/Masters/x.jpg",
        "Editor.app/Contents/Resources/icon.jpg",
        "Catalog Previews.lrdata/0/x.jpg",
        "Movie.fcpbundle/x.jpg",
        "iMovie Library.imovielibrary/x.jpg",
        "Plugin.bundle/x.jpg",
        "Odd Package/Contents/Resources/x.jpg",
    ]:
        jpg(home / "Pictures" / pkg)
    (home / "Pictures" / "Odd Package" / "Contents" / "Info.plist").write_text("<plist/>")
    jpg(home / "Library" / "Caches" / "com.app" / "cached.jpg")
    jpg(home / "Library" / "Containers" / "x" / "y.jpg")
    data = home / "FoveaData"
    jpg(data / "thumbnails" / "ab" / "abcd.jpg")
    stats = WalkStats()
    found = [
        e.path
        for e in walk(home, WalkOptions(home=home, own_dirs=(data,)), stats)
        if isinstance(e, FileEntry)
    ]
    assert found == [home / "Pictures" / "keep.jpg"]
    assert stats.packages == 9
    assert stats.notes == [
        f"skipped the Photos library {home / 'Pictures' / name} (add it on its own to index its originals)"
        for name in ("Photos Library.photoslibrary", "iPhoto Library.photolibrary")
    ]


def photos_library(folder: Path, originals: str | None = "originals") -> Path:
    lib = folder / "Photos Library.photoslibrary"
    if originals:
        jpg(lib / originals / "0" / "IMG_0001.jpg", seed=1)
        jpg(lib / originals / "F" / "IMG_0002.jpg", seed=2)
    jpg(lib / "resources" / "derivatives" / "0" / "IMG_0001_1_105_c.jpeg", seed=1)  # a derivative
    jpg(lib / "scopes" / "x.jpg", seed=3)
    (lib / "database").mkdir(parents=True)
    (lib / "database" / "Photos.sqlite").write_bytes(b"SQLite format 3\x00")
    return lib


@pytest.mark.parametrize("originals", ["originals", "Masters"])
def test_adding_a_photos_library_indexes_its_originals_only_and_read_only(tmp_path, originals):
    lib = photos_library(tmp_path, originals)
    before = sha256s(lib)
    store = Store(tmp_path / "db.sqlite")
    summary = run(store, lib)
    names = sorted(Path(p).name for (p,) in store.conn.execute("SELECT path FROM images"))
    assert names == ["IMG_0001.jpg", "IMG_0002.jpg"] and summary.embedded == 2
    assert summary.notes == [f"{lib}: a Photos library; indexing its originals only, read-only"]
    assert sha256s(lib) == before
    assert run(store, lib).missing == 0  # a rerun finds the same originals


def test_a_photos_library_without_originals_says_so(tmp_path):
    lib = photos_library(tmp_path, originals=None)
    store = Store(tmp_path / "db.sqlite")
    summary = run(store, lib)
    assert summary.added == 0 and "without originals/ or Masters/" in summary.notes[0]


def test_a_photos_library_inside_a_library_keeps_its_own_files(tmp_path):
    pics = tmp_path / "Pictures"
    jpg(pics / "a.jpg", seed=5)
    lib = photos_library(pics)
    store = Store(tmp_path / "db.sqlite")
    run(store, lib)
    first = run(store, pics)  # the wide root's walk skips the package: its originals must not go missing
    assert first.missing == 0 and store.status_counts() == {"ok": 3}
    assert "skipped the Photos library" in first.notes[0]


def test_refused_access_names_full_disk_access_on_a_mac(tmp_path):
    msg = access_hint(
        tmp_path / "Photos Library.photoslibrary",
        PermissionError(errno.EPERM, "Operation not permitted"),
        mac=True,
    )
    assert "Full Disk Access" in msg and "Photos Library.photoslibrary" in msg
    assert "Full Disk Access" not in access_hint(tmp_path, PermissionError(errno.EACCES, "denied"), mac=False)


def test_an_unreadable_root_is_one_recorded_problem_with_a_hint(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise PermissionError(errno.EPERM, "Operation not permitted")
        yield  # a generator, as walk is

    monkeypatch.setattr(library, "walk", refuse)
    monkeypatch.setattr(library, "access_hint", lambda f, e: access_hint(f, e, mac=True))
    (tmp_path / "lib").mkdir()
    summary = run(Store(tmp_path / "db.sqlite"), tmp_path / "lib")
    assert summary.offline_roots == [tmp_path / "lib"]
    assert len(summary.notes) == 1 and "Full Disk Access" in summary.notes[0]


# ---- iCloud ---------------------------------------------------------------------------------------


def fake_dataless(monkeypatch, names: set[str]) -> list[str]:
    """Stat results with SF_DATALESS for `names` (as macOS reports evicted iCloud files); returns a read log."""
    real_stat, real_open = os.stat, open
    reads: list[str] = []

    def stat(path, *a, **k):
        s = real_stat(path, *a, **k)
        flags = SF_DATALESS if Path(path).name in names else 0
        return SimpleNamespace(**{f: getattr(s, f) for f in dir(s) if f.startswith("st_")}, st_flags=flags)

    def logged_open(path, *a, **k):
        if isinstance(path, (str, Path)) and Path(path).name in names:
            reads.append(Path(path).name)
        return real_open(path, *a, **k)

    monkeypatch.setattr(library, "_stat", stat)
    monkeypatch.setattr("builtins.open", logged_open)
    return reads


def test_dataless_icloud_files_are_recorded_not_read(tmp_path, monkeypatch):
    for i in range(3):
        jpg(tmp_path / "lib" / f"p{i}.jpg", seed=i)
    reads = fake_dataless(monkeypatch, {"p1.jpg"})
    store = Store(tmp_path / "db.sqlite")
    summary = run(store, tmp_path / "lib")
    assert reads == [] and summary.in_cloud == 1 and summary.embedded == 2
    assert store.status_counts() == {"ok": 2, "cloud": 1}
    row = store.conn.execute("SELECT error FROM images WHERE status = 'cloud'").fetchone()
    assert row[0].startswith("in iCloud, not downloaded")
    # Opting in reads (downloads) it.
    summary = run(store, tmp_path / "lib", download_icloud=True)
    assert reads and summary.embedded == 1 and store.status_counts() == {"ok": 3}


def test_an_icloud_file_downloaded_later_is_indexed_on_the_next_run(tmp_path, monkeypatch):
    jpg(tmp_path / "lib" / "p.jpg")
    store = Store(tmp_path / "db.sqlite")
    with monkeypatch.context() as m:
        fake_dataless(m, {"p.jpg"})
        run(store, tmp_path / "lib")
    assert store.status_counts() == {"cloud": 1}
    summary = run(store, tmp_path / "lib")  # same size and mtime, now with its bytes on disk
    assert summary.embedded == 1 and store.status_counts() == {"ok": 1}


def test_is_dataless_reads_the_flag():
    assert is_dataless(SimpleNamespace(st_flags=SF_DATALESS | 0x20))
    assert not is_dataless(SimpleNamespace(st_flags=0)) and not is_dataless(SimpleNamespace())
