"""Path rewriting for cluster workers that mount the photo share (or the model folder) elsewhere.

`/Volumes/Photos=/mnt/photos` sends `/Volumes/Photos/2019/a.jpg` to workers as `/mnt/photos/2019/a.jpg`.
The store keeps the driver's own paths; only what travels to workers is rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from app.core.errors import UsageError


@dataclass(frozen=True)
class PathMap:
    """(local prefix, worker prefix) rules; the longest matching local prefix wins, whole components only."""

    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, specs: Sequence[str]) -> PathMap:
        """`LOCAL=REMOTE` strings (the CLI's --path-map); LOCAL must be absolute, REMOTE non-empty."""
        rules = []
        for spec in specs:
            local, sep, remote = spec.partition("=")
            if not sep or not local or not remote:
                raise UsageError(
                    f"--path-map {spec!r}: expected LOCAL=REMOTE, e.g. /Volumes/Photos=/mnt/photos"
                )
            if not PurePath(local).is_absolute():
                raise UsageError(f"--path-map {spec!r}: the local side must be an absolute path")
            rules.append((str(PurePath(local)), remote.rstrip("/") or "/"))
        return cls(tuple(sorted(rules, key=lambda r: -len(PurePath(r[0]).parts))))

    def to_worker(self, path: Path | str) -> str:
        """The path a worker opens for the driver's `path` (unchanged when no rule matches)."""
        p = PurePath(path)
        for local, remote in self.rules:
            base = PurePath(local)
            if p == base or base in p.parents:
                rest = p.relative_to(base).as_posix()
                return remote if rest == "." else f"{remote.rstrip('/')}/{rest}"
        return str(p)
