"""Library roots that nest: one library, each file once.

Every registered root stays listed (a folder inside another is a view of it), but each image row
belongs to the widest registered root that contains it (its owner). Adding a folder that contains
existing roots moves their rows to it with ids, and so embeddings, tags and captions, intact; adding
a folder inside a root scans that subtree as part of the wider root; removing a root hands its rows
to the widest remaining root that covers them, and forgets only what no other root covers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.core.layouts import skipped_name
from app.core.store import Store, path_to_text


@dataclass(frozen=True)
class RootPlan:
    """What one requested folder means: scan `scope`, file what is found under the owner `root`."""

    root_id: int
    root: Path
    scope: Path

    @property
    def folded(self) -> bool:
        """True when the folder lies inside a wider root and is indexed as part of it."""
        return self.scope != self.root


def contains(outer: str | Path, inner: str | Path) -> bool:
    """True when `inner` is `outer` or lies below it (paths compared as stored text, no disk access)."""
    o, i = path_to_text(outer).rstrip(os.sep) or os.sep, path_to_text(inner)
    return i == o or i.startswith(o if o.endswith(os.sep) else o + os.sep)


def owner_of(path: str | Path, roots: list[tuple[int, Path, str]]) -> tuple[int, Path] | None:
    """The widest registered root containing `path` whose walk reaches it, or None.

    A root inside a package or a dot folder of another (a Photos library in ~/Pictures) keeps its own
    files: the wider root's walk never enters there, so it must not own (and later mark missing) them.
    """
    covering = [(i, p) for i, p, _ in roots if contains(p, path) and not _walk_skips(p, path)]
    return min(covering, key=lambda r: len(path_to_text(r[1])), default=None)


def _walk_skips(outer: Path, inner: str | Path) -> bool:
    rel = Path(inner).relative_to(outer).parts if Path(inner) != outer else ()
    return any(skipped_name(part) for part in rel)


def add_root(store: Store, folder: str | Path, now: float) -> RootPlan:
    """Register `folder` (absolute) and give every image row its owner; call before scanning it."""
    folder = Path(os.path.abspath(folder))
    with store.transaction():
        store.add_root(folder, now)
        _fold(store)
        owner = owner_of(folder, store.roots())
    assert owner is not None  # the folder itself was just registered
    return RootPlan(owner[0], owner[1], folder)


def _fold(store: Store) -> None:
    """Rows of a root inside a wider one move to the wider one (the outermost owner wins)."""
    roots = store.roots()
    for rid, path, _ in roots:
        owner = owner_of(path, roots)
        if owner is not None and owner[0] != rid:
            store.reown_images([rid], owner[0])


def remove_root(store: Store, folder: str | Path) -> bool:
    """Forget one root; rows still covered by another root move to it. False when it is not a root.

    The photos on disk are never touched.
    """
    text = path_to_text(Path(folder))
    with store.transaction():
        roots = store.roots()
        gone = next((r for r in roots if path_to_text(r[1]) == text), None)
        if gone is None:
            return False
        rest = [r for r in roots if r[0] != gone[0]]
        # Widest remaining roots under the removed one take over their subtrees.
        tops = [r for r in rest if contains(gone[1], r[1]) and owner_of(r[1], rest)[0] == r[0]]
        for rid, path, _ in tops:
            store.reown_images_under(gone[0], path, rid)
        store.delete_root(gone[0])
    return True


def plan_scans(plans: list[RootPlan]) -> list[RootPlan]:
    """Drop requests whose scope lies inside another request's scope: each folder is walked once."""
    kept: list[RootPlan] = []
    for p in sorted(plans, key=lambda p: len(path_to_text(p.scope))):
        if not any(contains(k.scope, p.scope) for k in kept):
            kept.append(p)
    return kept
