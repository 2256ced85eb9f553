"""Fovea's disposable files (thumbnails, previews, the Hugging Face hub's caches) in the user cache
folder, with a size cap and least-recently-used eviction.

macOS keeps caches in ~/Library/Caches/Fovea (Linux: ~/.cache/Fovea): Time Machine skips them and the
system may purge them, which is fine because everything here is rebuilt on demand. User data
(libraries, settings, models) stays in the user data folder (app.core.paths).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app.core.paths import APP_NAME, user_data_dir

# 2 GiB: a 256-px grid thumbnail is ~20 KB and a 480-pt preview at 2x ~120 KB, so the grid of a
# 50,000-photo library plus a few thousand previews fit; Settings.thumbnail_cache_mb changes it.
DEFAULT_CAP_MB = 2048
EVICT_TO = 0.9  # evict down to 90% of the cap, so the next few thumbnails do not trigger another pass


def cache_dir() -> Path:
    """FOVEA_CACHE_DIR, else `<FOVEA_DATA_DIR>/cache` (tests keep everything together), else the platform's."""
    if override := os.environ.get("FOVEA_CACHE_DIR"):
        return Path(override)
    if data := os.environ.get("FOVEA_DATA_DIR"):
        return Path(data) / "cache"
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def thumbnails_dir() -> Path:
    return cache_dir() / "thumbnails"


def hub_cache_env(env: MutableMapping[str, str], frozen: bool | None = None) -> dict[str, str]:
    """In the packaged app, point HF_HOME and HF_XET_CACHE into Fovea's cache (nothing lands in ~/.cache).

    Must run before huggingface_hub is imported (it reads them once). A user's own settings win; from a
    source checkout the developer's shared hub cache is kept. Returns what was set.
    """
    frozen = getattr(sys, "frozen", False) if frozen is None else frozen
    if not frozen:
        return {}
    hf_home = cache_dir() / "huggingface"
    wanted = {"HF_HOME": str(hf_home), "HF_XET_CACHE": str(hf_home / "xet")}
    set_now = {k: v for k, v in wanted.items() if k not in env}
    env.update(set_now)
    return set_now


@dataclass(frozen=True)
class Migration:
    """What happened to a cache found at its old place: moved, or left there with the reason."""

    moved: bool
    detail: str


def migrate_old_thumbnails(old: Path | None = None, new: Path | None = None) -> Migration | None:
    """Move thumbnails from `<user data>/thumbnails` (releases before 0.2) to the cache folder.

    Only this one folder is touched: libraries and settings beside it stay where they are. A move that
    fails keeps the old folder (nothing deleted) and the cache is rebuilt; the caller shows `detail`.
    """
    old = old or user_data_dir() / "thumbnails"
    new = new or thumbnails_dir()
    if not old.is_dir() or old.resolve() == new.resolve():
        return None
    try:
        if new.exists():  # both exist: keep the new cache, fold the old files in, then drop the old folder
            for f in old.rglob("*"):
                if f.is_file() and not (new / f.relative_to(old)).exists():
                    (new / f.relative_to(old)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(f), new / f.relative_to(old))
            shutil.rmtree(old)
        else:
            new.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(old), new)
    except OSError as e:
        return Migration(False, f"thumbnails left in {old} ({e}); they will be rebuilt in {new}")
    return Migration(True, f"thumbnails moved from {old} to {new}")


@dataclass(frozen=True)
class Eviction:
    files: int  # files removed
    freed: int  # bytes removed
    kept: int  # bytes left in the cache


def evict(folder: Path, cap_bytes: int) -> Eviction:
    """Remove the least recently used files (oldest mtime: cache hits touch theirs) until under `cap_bytes`.

    Nothing happens while the folder is within the cap; then it is cut to EVICT_TO of it.
    """
    entries = []
    for dirpath, _, names in os.walk(folder):
        for n in names:
            p = Path(dirpath) / n
            try:
                st = p.stat()
            except OSError:  # removed by a concurrent worker
                continue
            entries.append((st.st_mtime_ns, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    if total <= cap_bytes:
        return Eviction(0, 0, total)
    target, removed, freed = int(cap_bytes * EVICT_TO), 0, 0
    for _, size, p in sorted(entries, key=lambda e: (e[0], str(e[2]))):
        if total - freed <= target:
            break
        try:
            p.unlink()
        except OSError:
            continue
        removed, freed = removed + 1, freed + size
    return Eviction(removed, freed, total - freed)


def touch(path: Path) -> None:
    """Mark a cache hit, so that eviction keeps what is in use (atime is unreliable: noatime mounts)."""
    try:
        os.utime(path)
    except OSError:
        pass
