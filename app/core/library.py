"""Library scanning and change detection: which files are new, changed, moved or gone.

A file is unchanged when size and mtime match (no read at all). Otherwise a partial content hash
(size + first and last MiB) tells a touched or moved file from new content, so a rename keeps its
embeddings, tags and captions. Files that vanish are marked 'missing', never deleted; a root
that cannot be read (or comes back empty, as an unmounted mount point does) is marked 'offline'
and none of its images change.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.core.decode import EXTENSIONS
from app.core.layouts import (
    SKIP_DIRS,
    access_hint,
    is_dataless,
    is_package,
    is_photos_library,
    looks_like_image,
    never_walk,
    photos_library_originals,
)
from app.core.roots import RootPlan
from app.core.store import Store, path_to_text

MIB = 1 << 20
IN_CLOUD = "in iCloud, not downloaded (index --download-icloud, or the setting, fetches it)"
_stat = os.stat  # module-level so tests can simulate a file vanishing between listing and stat


@dataclass(frozen=True)
class FileEntry:
    path: Path
    size: int
    mtime_ns: int
    in_cloud: bool = False  # an iCloud file not on this disk: recorded, never read


@dataclass(frozen=True)
class Problem:
    """Something found while walking: a broken link or unreadable file (is_file) or folder."""

    path: Path
    reason: str
    is_file: bool


@dataclass
class RootScan:
    root: Path  # the owning library root
    root_id: int
    scope: Path | None = None  # the folder walked when it lies inside `root` (None: the whole root)
    online: bool = True
    files: list[FileEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    stats: WalkStats = field(default_factory=lambda: WalkStats())


@dataclass
class Changes:
    added: int = 0
    updated: int = 0
    moved: int = 0
    missing: int = 0
    errors: int = 0
    unchanged: int = 0
    in_cloud: int = 0  # iCloud files not downloaded, recorded with status 'cloud'


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in EXTENSIONS


@dataclass
class WalkStats:
    """What a walk passed over, for the summary: files that are not images, packages, notes."""

    other_files: int = 0
    packages: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WalkOptions:
    download_icloud: bool = False  # reading a dataless file downloads it: only when the user opted in
    home: Path = field(default_factory=Path.home)
    own_dirs: tuple[Path, ...] = ()  # Fovea's data and cache folders


def walk(
    root: Path, options: WalkOptions | None = None, stats: WalkStats | None = None
) -> Iterator[FileEntry | Problem]:
    """Image files under `root`, recursively, following symlinks; a folder seen before is not re-entered.

    Package folders (a Photos library, an app), ~/Library and Fovea's own folders are not entered.
    Raises OSError when `root` itself cannot be listed.
    """
    opts, stats = options or WalkOptions(), stats if stats is not None else WalkStats()
    visited: set[tuple[int, int]] = set()
    st = os.stat(root)
    visited.add((st.st_dev, st.st_ino))
    stack = [root]
    first = True
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            if first:
                raise
            yield Problem(folder, f"cannot list folder: {e.strerror or e}", is_file=False)
            continue
        first = False
        subdirs = []
        for e in entries:
            path = Path(e.path)
            try:
                is_dir = e.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir:
                if (
                    e.name.startswith(".")
                    or e.name in SKIP_DIRS
                    or never_walk(path, opts.home, opts.own_dirs)
                ):
                    continue
                if is_package(path):
                    stats.packages += 1
                    if is_photos_library(path):
                        stats.notes.append(
                            f"skipped the Photos library {path} (add it on its own to index its originals)"
                        )
                    continue
                try:
                    s = _stat(path)
                except OSError as err:
                    yield Problem(path, f"cannot open folder: {err.strerror or err}", is_file=False)
                    continue
                if (s.st_dev, s.st_ino) in visited:
                    yield Problem(path, "symlink loop (folder already scanned)", is_file=False)
                    continue
                visited.add((s.st_dev, s.st_ino))
                subdirs.append(path)
            elif e.name.startswith("."):
                continue  # AppleDouble "._x.jpg" files, .DS_Store: metadata, not photos
            else:
                item = _file_entry(e, path, opts)
                if item is None:
                    stats.other_files += 1
                elif item is not _GONE:
                    yield item
        stack.extend(reversed(subdirs))


_GONE = Problem(Path(), "", is_file=True)  # a file deleted while we scanned: nothing to report


def _file_entry(e: os.DirEntry, path: Path, opts: WalkOptions) -> FileEntry | Problem | None:
    """The entry for an image file (by extension, or by signature when it has none); None: not an image."""
    ext = os.path.splitext(e.name)[1]
    if ext and ext.lower() not in EXTENSIONS:
        return None
    try:
        s = _stat(path)
    except FileNotFoundError:
        return Problem(path, "broken symlink", is_file=True) if e.is_symlink() else _GONE
    except OSError as err:
        return Problem(path, f"cannot stat: {err.strerror or err}", is_file=True)
    if not stat.S_ISREG(s.st_mode):
        return None
    cloud = is_dataless(s) and not opts.download_icloud
    if not ext and (cloud or not _has_image_signature(path)):
        return None
    return FileEntry(path, s.st_size, s.st_mtime_ns, in_cloud=cloud)


def _has_image_signature(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return looks_like_image(f.read(16))
    except OSError:
        return False


def partial_hash(path: Path, size: int) -> str:
    """blake2b over the size and the first and last MiB: cheap on large files, stable across renames."""
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        h.update(f.read(MIB))
        if size > MIB:
            f.seek(max(MIB, size - MIB))
            h.update(f.read(MIB))
    return h.hexdigest()


def scan_root(store: Store, plan: RootPlan, options: WalkOptions | None = None) -> Iterator[RootScan | int]:
    """Walk one planned folder, yielding the running file count now and then, and finally its `RootScan`.

    A Photos library is walked in its originals only (read-only, as every photo is).
    """
    scan = RootScan(plan.root, plan.root_id, plan.scope if plan.folded else None)
    target = plan.scope
    if is_photos_library(plan.scope) and os.path.isdir(plan.scope):
        target = photos_library_originals(plan.scope)
        scan.stats.notes.append(
            f"{plan.scope}: a Photos library; indexing its originals only, read-only"
            if target
            else f"{plan.scope}: a Photos library without originals/ or Masters/ (nothing stored on this Mac?)"
        )
    try:
        if target is not None:
            for n, item in enumerate(walk(target, options, scan.stats), 1):
                (scan.files if isinstance(item, FileEntry) else scan.problems).append(item)
                if n % 256 == 0:
                    yield n
    except OSError as e:
        scan.online = False
        if isinstance(e, PermissionError):
            scan.stats.notes.append(access_hint(target, e))
    known = sum(r[5] != "missing" for r in _known_rows(store, scan))
    if scan.online and not scan.files and known:
        scan.online = False  # an unmounted mount point looks like an empty folder
    if not plan.folded:  # a subfolder's scan says nothing about the rest of its root
        with store.transaction():
            store.set_root_state(plan.root_id, "online" if scan.online else "offline")
    yield scan


def _known_rows(store: Store, scan: RootScan) -> list[tuple]:
    return store.image_rows_under(scan.root_id, scan.scope or scan.root)


def apply_changes(
    store: Store, scans: list[RootScan], now: float, chunk: int = 256
) -> Iterator[tuple[int, Changes]]:
    """Bring the images table in line with the walked roots; yields (files handled, counts) per chunk.

    All roots are compared at once so a file moved between two roots is still recognised as moved.
    """
    c = Changes()
    online = [s for s in scans if s.online]
    existing: dict[str, tuple] = {}
    for s in online:
        for row in _known_rows(store, s):
            existing[row[0]] = row[1:]
    seen = {path_to_text(f.path) for s in online for f in s.files}
    seen |= {path_to_text(p.path) for s in online for p in s.problems if p.is_file}
    gone = {k: v for k, v in existing.items() if k not in seen and v[4] != "missing"}
    # Rows a new file may have been moved from: gone now, or missing from an earlier run.
    movable: dict[tuple[int, str], list[int]] = {}
    for v in gone.values():
        movable.setdefault((v[1], v[3]), []).append(v[0])
    for i, size, h in store.missing_images():
        movable.setdefault((size, h), []).append(i)
    moved_ids: set[int] = set()
    work = [(s.root_id, f) for s in online for f in s.files]
    for k in range(0, len(work), chunk):
        with store.transaction():
            for root_id, f in work[k : k + chunk]:
                _apply_one(store, c, root_id, f, existing.get(path_to_text(f.path)), movable, moved_ids, now)
        yield min(k + chunk, len(work)), c
    with store.transaction():
        for s in online:
            for p in s.problems:
                store.record_error(p.path, p.reason, now)
                if p.is_file:
                    store.put_error_image(s.root_id, p.path, p.reason, now)
                    c.errors += 1
        for v in gone.values():
            if v[0] not in moved_ids:
                store.mark_missing(v[0])
                c.missing += 1
    yield len(work), c


def _apply_one(store: Store, c: Changes, root_id: int, f: FileEntry, row, movable, moved_ids, now) -> None:
    if row is not None:
        image_id, size, mtime_ns, old_hash, status, width = row
        if size == f.size and mtime_ns == f.mtime_ns and (f.in_cloud or status != "cloud"):
            if status == "missing":  # came back where it was
                store.restore_image(image_id, width)
            c.unchanged += 1
            return
    if f.in_cloud:  # hashing would download it: recorded, read once it is on this disk (or opted in)
        store.mark_in_cloud(root_id, f.path, f.size, f.mtime_ns, IN_CLOUD)
        c.in_cloud += 1
        return
    try:
        h = partial_hash(f.path, f.size)
    except FileNotFoundError:
        return  # vanished since the walk; the next run marks it missing if its row exists
    except OSError as e:
        store.record_error(f.path, f"cannot read: {e.strerror or e}", now)
        store.put_error_image(root_id, f.path, f"cannot read: {e.strerror or e}", now)
        c.errors += 1
        return
    if row is not None:
        if h == old_hash and size == f.size:  # touched, same content
            store.touch_image(image_id, f.mtime_ns)
            if status == "missing":
                store.restore_image(image_id, width)
            c.unchanged += 1
            return
        # New content at the same path: old vectors and machine guesses are stale; user decisions stay.
        store.replace_content(image_id, f.size, f.mtime_ns, h)
        c.updated += 1
        return
    candidates = movable.get((f.size, h))
    if candidates:
        image_id = candidates.pop()
        moved_ids.add(image_id)
        width = store.move_image(image_id, f.path, root_id, f.mtime_ns)
        store.restore_image(image_id, width)
        c.moved += 1
        return
    store.add_image(root_id, f.path, f.size, f.mtime_ns, h)
    c.added += 1
