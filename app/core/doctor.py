"""`fovea doctor`: check a library file and, on request, repair it (see `app.core.salvage`).

The checks open the file read-only and never change it: SQLite's integrity check, rows that point
at nothing (foreign rows, orphan embeddings), roots that are offline, the thumbnail cache's size.
Each finding says what is wrong and what the person can do about it.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from sqlite3 import Connection

from app.core import store_repair as sql

REPAIRABLE = frozenset({"integrity", "foreign_rows", "orphan_embeddings"})  # what --repair can fix
INTEGRITY_LINES = 20  # integrity_check stops after this many problems; enough to tell damage from a blip


@dataclass(frozen=True)
class Finding:
    """One check: `ok`, a one-line `detail`, and `advice` when something should be done."""

    check: str
    ok: bool
    detail: str
    advice: str | None = None
    count: int = 0

    def to_json(self) -> dict:
        return {
            "check": self.check,
            "ok": self.ok,
            "detail": self.detail,
            "advice": self.advice,
            "count": self.count,
        }


@dataclass(frozen=True)
class DoctorReport:
    db: Path
    findings: tuple[Finding, ...]

    @property
    def healthy(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def needs_repair(self) -> bool:
        """Problems in the file itself (offline roots and a big cache are advice, not faults)."""
        return any(f.check in REPAIRABLE and not f.ok for f in self.findings)

    @property
    def damaged(self) -> bool:
        """SQLite itself reports damage: only a salvage (`--repair`) helps."""
        return any(f.check == "integrity" and not f.ok for f in self.findings)

    def to_json(self) -> dict:
        return {
            "db": str(self.db),
            "healthy": self.healthy,
            "needs_repair": self.needs_repair,
            "findings": [f.to_json() for f in self.findings],
        }


def integrity(conn: Connection) -> list[str]:
    """SQLite's integrity check: an empty list when the file is sound, else its first problems."""
    return sql.integrity(conn, INTEGRITY_LINES)


def foreign_findings(conn: Connection) -> list[Finding]:
    out = []
    found = sql.foreign_counts(conn)
    n = sum(c for _, c in found)
    out.append(
        Finding(
            "foreign_rows",
            n == 0,
            "none" if n == 0 else "; ".join(f"{c} {d}" for d, c in found if c),
            None if n == 0 else "fovea doctor --repair removes them (a copy of the file is kept)",
            n,
        )
    )
    orphans = sql.orphan_embeddings(conn)
    if orphans is not None:
        out.append(
            Finding(
                "orphan_embeddings",
                orphans == 0,
                "none" if orphans == 0 else f"{orphans} embeddings of images no longer in the library",
                None if orphans == 0 else "fovea doctor --repair removes them; search ignores them meanwhile",
                orphans,
            )
        )
    return out


def root_findings(conn: Connection) -> list[Finding]:
    """Roots recorded offline or not reachable now (an unplugged disk, an unmounted share)."""
    from app.core.store import text_to_path

    rows = sql.root_rows(conn)
    if rows is None:
        return []
    gone = [
        str(text_to_path(p)) for p, state in rows if state == "offline" or not os.path.isdir(text_to_path(p))
    ]
    return [
        Finding(
            "roots_offline",
            not gone,
            "all reachable" if not gone else "offline: " + ", ".join(gone),
            None
            if not gone
            else "connect the disk or share and run `fovea index` again; their photos are kept meanwhile",
            len(gone),
        )
    ]


def index_files(db: Path) -> list[Path]:
    """Persisted search indexes beside the library (app.core.index_file), one per model."""
    return sorted(db.parent.glob(f"{glob.escape(db.name)}.*.fvx"))


def stale_index_files(conn: Connection, db: Path) -> list[Path]:
    """Index files written for another state of the library (a different vectors_generation)."""
    from app.core.index_file import IndexFileError, read_header

    generation = sql.vectors_generation(conn)
    stale = []
    for path in index_files(db):
        try:
            current = generation is not None and read_header(path).get("generation") == generation
        except IndexFileError:
            current = False
        if not current:
            stale.append(path)
    return stale


def index_finding(conn: Connection, db: Path) -> Finding:
    files, stale = index_files(db), stale_index_files(conn, db)
    size = sum(p.stat().st_size for p in stale) / 1e6
    return Finding(
        "persisted_index",
        not stale,
        f"{len(files)} index file(s), {len(stale)} stale"
        if files
        else "none yet (built at the first search)",
        None
        if not stale
        else f"rebuilt at the next search by itself; `fovea doctor --repair` deletes the stale ones ({size:.1f} MB)",
        len(stale),
    )


def cache_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) under `folder`; (0, 0) when it does not exist."""
    files = total = 0
    for root, _, names in os.walk(folder):
        for n in names:
            try:
                total += os.stat(os.path.join(root, n)).st_size
                files += 1
            except OSError:  # removed while we walked
                pass
    return files, total


def thumbnail_finding(cache_dir: Path) -> Finding:
    files, total = cache_size(cache_dir)
    return Finding(
        "thumbnails",
        True,
        f"{files} thumbnails, {total / 1e6:.1f} MB in {cache_dir}",
        None
        if total < 2e9
        else f"the cache may be deleted to free space ({cache_dir}); it is rebuilt on demand",
        files,
    )


def check(db: str | Path, thumbnails: Path | None = None) -> DoctorReport:
    """Every check on the library file `db`, read-only. A missing file raises FileNotFoundError."""
    from app.core.store import SCHEMA_VERSION

    db = Path(db)
    if not db.is_file():
        raise FileNotFoundError(db)
    findings: list[Finding] = []
    conn = sql.open_readonly(db)
    try:
        problems = integrity(conn)
        findings.append(
            Finding(
                "integrity",
                not problems,
                "ok" if not problems else "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""),
                None
                if not problems
                else "run `fovea doctor --repair`: it salvages what is readable into a new file and keeps this one",
                len(problems),
            )
        )
        if not problems:
            version = sql.user_version(conn)
            if version > SCHEMA_VERSION:
                findings.append(
                    Finding(
                        "schema",
                        False,
                        f"schema v{version} is newer than this Fovea",
                        "use the Fovea that wrote it",
                    )
                )
            else:
                findings.append(Finding("schema", True, f"v{version} (this Fovea: v{SCHEMA_VERSION})"))
                findings += foreign_findings(conn)
                findings += root_findings(conn)
                findings.append(index_finding(conn, db))
    finally:
        conn.close()
    if thumbnails is not None:
        findings.append(thumbnail_finding(thumbnails))
    return DoctorReport(db, tuple(findings))
