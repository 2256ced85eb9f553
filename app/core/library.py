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
from app.core.roots import RootPlan
from app.core.store import Store, path_to_text

MIB = 1 << 20
# System folders of NAS boxes, Windows, macOS and our own thumbnail cache; dot folders are skipped too.
SKIP_DIRS = frozenset(
    {
        "@eaDir",
        "#recycle",
        "#snapshot",
        "$RECYCLE.BIN",
        "System Volume Information",
        "lost+found",
        "fovea-thumbnails",
    }
)
_stat = os.stat  # module-level so tests can simulate a file vanishing between listing and stat


@dataclass(frozen=True)
class FileEntry:
    path: Path
    size: int
    mtime_ns: int


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


@dataclass
class Changes:
    added: int = 0
    updated: int = 0
    moved: int = 0
    missing: int = 0
    errors: int = 0
    unchanged: int = 0


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in EXTENSIONS


def walk(root: Path) -> Iterator[FileEntry | Problem]:
    """Image files under `root`, recursively, following symlinks; a folder seen before is not re-entered.

    Raises OSError when `root` itself cannot be listed.
    """
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
                if e.name.startswith(".") or e.name in SKIP_DIRS:
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
            elif is_image_name(e.name):
                try:
                    s = _stat(path)
                except FileNotFoundError:
                    if e.is_symlink():
                        yield Problem(path, "broken symlink", is_file=True)
                    continue  # deleted while we scanned: nothing to index
                except OSError as err:
                    yield Problem(path, f"cannot stat: {err.strerror or err}", is_file=True)
                    continue
                if stat.S_ISREG(s.st_mode):
                    yield FileEntry(path, s.st_size, s.st_mtime_ns)
        stack.extend(reversed(subdirs))


def partial_hash(path: Path, size: int) -> str:
    """blake2b over the size and the first and last MiB: cheap on large files, stable across renames."""
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        h.update(f.read(MIB))
        if size > MIB:
            f.seek(max(MIB, size - MIB))
            h.update(f.read(MIB))
    return h.hexdigest()


def scan_root(store: Store, plan: RootPlan) -> Iterator[RootScan | int]:
    """Walk one planned folder, yielding the running file count now and then, and finally its `RootScan`."""
    scan = RootScan(plan.root, plan.root_id, plan.scope if plan.folded else None)
    try:
        for n, item in enumerate(walk(plan.scope), 1):
            (scan.files if isinstance(item, FileEntry) else scan.problems).append(item)
            if n % 256 == 0:
                yield n
    except OSError:
        scan.online = False
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
    for i, size, h in store.conn.execute(
        "SELECT id, size, content_hash FROM images WHERE status = 'missing'"
    ):
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
                    _upsert_error_row(store, s.root_id, p.path, p.reason, now)
                    c.errors += 1
        for v in gone.values():
            if v[0] not in moved_ids:
                store.conn.execute("UPDATE images SET status = 'missing' WHERE id = ?", (v[0],))
                c.missing += 1
    yield len(work), c


def _apply_one(store: Store, c: Changes, root_id: int, f: FileEntry, row, movable, moved_ids, now) -> None:
    text = path_to_text(f.path)
    ex = store.conn.execute
    if row is not None:
        image_id, size, mtime_ns, old_hash, status, width = row
        if size == f.size and mtime_ns == f.mtime_ns:
            if status == "missing":  # came back where it was
                _restore(store, image_id, width)
            c.unchanged += 1
            return
    try:
        h = partial_hash(f.path, f.size)
    except FileNotFoundError:
        return  # vanished since the walk; the next run marks it missing if its row exists
    except OSError as e:
        store.record_error(f.path, f"cannot read: {e.strerror or e}", now)
        _upsert_error_row(store, root_id, f.path, f"cannot read: {e.strerror or e}", now)
        c.errors += 1
        return
    if row is not None:
        if h == old_hash and size == f.size:  # touched, same content
            ex("UPDATE images SET mtime_ns = ? WHERE id = ?", (f.mtime_ns, image_id))
            if status == "missing":
                _restore(store, image_id, width)
            c.unchanged += 1
            return
        # New content at the same path: old vectors and machine guesses are stale; user decisions stay.
        ex(
            """UPDATE images SET size = ?, mtime_ns = ?, content_hash = ?, status = 'pending', error = NULL,
               width = NULL, height = NULL, taken_at = NULL, camera = NULL WHERE id = ?""",
            (f.size, f.mtime_ns, h, image_id),
        )
        ex("DELETE FROM embeddings WHERE image_id = ?", (image_id,))
        ex("DELETE FROM tags WHERE image_id = ? AND status IN ('auto', 'review')", (image_id,))
        ex("DELETE FROM captions WHERE image_id = ?", (image_id,))
        c.updated += 1
        return
    candidates = movable.get((f.size, h))
    if candidates:
        image_id = candidates.pop()
        moved_ids.add(image_id)
        width = ex("SELECT width FROM images WHERE id = ?", (image_id,)).fetchone()[0]
        ex(
            "UPDATE images SET path = ?, root_id = ?, mtime_ns = ? WHERE id = ?",
            (text, root_id, f.mtime_ns, image_id),
        )
        _restore(store, image_id, width)
        c.moved += 1
        return
    ex(
        "INSERT INTO images (root_id, path, size, mtime_ns, content_hash, status) VALUES (?, ?, ?, ?, ?, 'pending')",
        (root_id, text, f.size, f.mtime_ns, h),
    )
    c.added += 1


def _restore(store: Store, image_id: int, width: int | None) -> None:
    """Back from 'missing': 'ok' if it was decoded before, and embeddings re-inserted so their rowids
    are new and an incremental search refresh (`embedding_rows(after_rowid=...)`) picks them up again."""
    ex = store.conn.execute
    ex("UPDATE images SET status = ? WHERE id = ?", ("ok" if width is not None else "pending", image_id))
    rows = ex(
        "SELECT model_id, vec_i8, scale, vec_f16 FROM embeddings WHERE image_id = ?", (image_id,)
    ).fetchall()
    ex("DELETE FROM embeddings WHERE image_id = ?", (image_id,))
    store.conn.executemany(
        "INSERT INTO embeddings (image_id, model_id, vec_i8, scale, vec_f16) VALUES (?, ?, ?, ?, ?)",
        [(image_id, *r) for r in rows],
    )


def _upsert_error_row(store: Store, root_id: int, path: Path, reason: str, now: float) -> None:
    store.conn.execute(
        """INSERT INTO images (root_id, path, status, error, indexed_at) VALUES (?, ?, 'error', ?, ?)
           ON CONFLICT(path) DO UPDATE SET status = 'error', error = excluded.error, indexed_at = excluded.indexed_at""",
        (root_id, path_to_text(path), reason, now),
    )
