"""Fovea's cache folder: where it is, LRU eviction under a size cap, the move from the old place, and
the hub's cache variables in the packaged app."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from app.core import cache
from app.core.cache import EVICT_TO, evict, hub_cache_env, migrate_old_thumbnails


def _file(p: Path, size: int, age_s: int) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x" * size)
    t = 1_700_000_000 - age_s
    os.utime(p, (t, t))
    return p


def test_cache_folder_is_the_platform_cache_unless_overridden(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("FOVEA_CACHE_DIR", raising=False)
    monkeypatch.delenv("FOVEA_DATA_DIR", raising=False)
    monkeypatch.setattr(cache.platformdirs, "user_cache_dir", lambda name, appauthor: f"/caches/{name}")
    assert cache.cache_dir() == Path("/caches/Fovea")
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    assert cache.thumbnails_dir() == tmp_path / "data" / "cache" / "thumbnails"
    monkeypatch.setenv("FOVEA_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"


def test_eviction_removes_the_least_recently_used_files_down_to_90_percent_of_the_cap(tmp_path) -> None:
    files = [_file(tmp_path / f"{i % 3}" / f"{i}.jpg", 100, age_s=1000 - i) for i in range(10)]  # 0 oldest
    assert evict(tmp_path, 1000) == cache.Eviction(0, 0, 1000)  # at the cap: nothing to do
    got = evict(tmp_path, 500)
    assert got == cache.Eviction(6, 600, 400) and 400 <= 500 * EVICT_TO
    assert [f.exists() for f in files] == [False] * 6 + [True] * 4


def test_a_thumbnail_hit_counts_as_use_so_eviction_keeps_it(tmp_path) -> None:
    from app.core.thumbnails import ensure_thumbnail

    photos = []
    for i in range(3):
        photos.append(tmp_path / f"p{i}.png")
        Image.new("RGB", (300, 200), (40 * i, 80, 120)).save(photos[-1])
    thumbs = tmp_path / "thumbs"
    made = [ensure_thumbnail(p, thumbs) for p in photos]
    for i, t in enumerate(made):  # made long ago, oldest first
        os.utime(t, (1_600_000_000 + i, 1_600_000_000 + i))
    assert ensure_thumbnail(photos[0], thumbs) == made[0]  # a hit on the oldest one
    size = made[0].stat().st_size
    evict(thumbs, sum(t.stat().st_size for t in made) - 1)
    assert made[0].exists() and not made[1].exists() and made[2].exists()
    assert size > 0


def test_old_thumbnails_move_to_the_cache_and_user_data_beside_them_stays(tmp_path) -> None:
    data = tmp_path / "data"
    db = _file(data / "library.sqlite", 10, 0)
    old = _file(data / "thumbnails" / "ab" / "ab12.jpg", 50, 0)
    new = tmp_path / "cache" / "thumbnails"
    m = migrate_old_thumbnails(data / "thumbnails", new)
    assert m.moved and "moved" in m.detail
    assert (new / "ab" / "ab12.jpg").read_bytes() == b"x" * 50 and not old.exists() and db.exists()
    assert migrate_old_thumbnails(data / "thumbnails", new) is None  # nothing left to move


def test_old_and_new_caches_are_merged_keeping_the_new_files(tmp_path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _file(old / "a.jpg", 1, 0)
    _file(old / "b.jpg", 2, 0)
    _file(new / "b.jpg", 3, 0)
    assert migrate_old_thumbnails(old, new).moved
    assert (new / "a.jpg").stat().st_size == 1 and (new / "b.jpg").stat().st_size == 3 and not old.exists()


def test_a_failed_move_keeps_the_old_folder_and_says_so(tmp_path, monkeypatch) -> None:
    old = _file(tmp_path / "old" / "a.jpg", 1, 0)

    def refuse(*a):
        raise OSError("read-only file system")

    monkeypatch.setattr(cache.shutil, "move", refuse)
    m = migrate_old_thumbnails(tmp_path / "old", tmp_path / "new")
    assert not m.moved and "read-only file system" in m.detail and "rebuilt" in m.detail and old.exists()


def test_the_packaged_app_keeps_the_hub_caches_inside_fovea_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FOVEA_CACHE_DIR", str(tmp_path))
    env: dict[str, str] = {}
    assert (
        hub_cache_env(env, frozen=True)
        == env
        == {
            "HF_HOME": str(tmp_path / "huggingface"),
            "HF_XET_CACHE": str(tmp_path / "huggingface" / "xet"),
        }
    )
    mine = {"HF_HOME": "/my/hf"}
    hub_cache_env(mine, frozen=True)
    assert mine["HF_HOME"] == "/my/hf"  # the user's own setting wins
    assert hub_cache_env({}, frozen=False) == {}  # from source: the developer's shared cache


@pytest.mark.parametrize("cap", [0, 1])
def test_a_tiny_cap_empties_the_cache_without_error(tmp_path, cap) -> None:
    _file(tmp_path / "a", 10, 5)
    assert evict(tmp_path, cap).kept == 0
