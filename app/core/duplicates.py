"""Duplicate groups: exact copies (same size and content hash) and near copies (cosine above a threshold).

Near pairs are found blockwise so memory stays bounded: below `exact_below` images every pair is
compared; above it the vectors are bucketed by k-means and only rows sharing one of their two best
buckets are compared (cos >= 0.9 neighbours nearly always share one; a pair split across worse
buckets can be missed). Groups are connected components of the pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from app.core.errors import UsageError

_BLOCK = 1024  # rows per block of an all-pairs pass: (1024, n) float32 scores at a time


def spherical_kmeans(x: np.ndarray, nlist: int, iters: int, rng: np.random.Generator) -> np.ndarray:
    """(m, d) rows -> (nlist, d) unit centroids maximising the inner product with their members."""
    cent = x[rng.choice(len(x), nlist, replace=False)].copy()
    for _ in range(iters):
        near = np.argmax(x @ cent.T, axis=1)
        order = np.argsort(near, kind="stable")
        counts = np.bincount(near, minlength=nlist)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sums = np.zeros_like(cent)
        full = counts > 0
        sums[full] = np.add.reduceat(x[order], starts[full], axis=0)  # per-list sums of member rows
        empty = np.linalg.norm(sums, axis=1) == 0  # an empty list restarts from a random row
        sums[empty] = x[rng.choice(len(x), int(empty.sum()), replace=False)]
        cent = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return cent.astype(np.float32)


@dataclass(frozen=True)
class DuplicateGroup:
    kind: Literal["exact", "near"]
    image_ids: list[int]
    paths: list[Path]
    score: float  # 1.0 for exact copies; the weakest cosine that joined a near group


class _Components:
    """Union-find over image ids, remembering the weakest link of each component."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.weakest: dict[int, float] = {}

    def find(self, a: int) -> int:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int, score: float) -> None:
        ra, rb = self.find(a), self.find(b)
        w = min(score, self.weakest.get(ra, 1.0), self.weakest.get(rb, 1.0))
        if ra != rb:
            self.parent[rb] = ra
        self.weakest[ra] = w

    def groups(self) -> list[tuple[list[int], float]]:
        out: dict[int, list[int]] = {}
        for a in self.parent:
            out.setdefault(self.find(a), []).append(a)
        return [(sorted(m), self.weakest.get(r, 1.0)) for r, m in out.items() if len(m) > 1]


def exact_groups(store) -> list[list[int]]:
    """Ids of 'ok' images sharing size and content hash, smallest id first."""
    return store.exact_duplicate_ids()


def near_pairs(
    x: np.ndarray, threshold: float, *, exact_below: int = 8192, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, cosine) row pairs with i < j and cosine >= threshold among the rows of x (n, d).

    x may be int8 (kept compact, 1/4 of float32): rows are normalised as they are read.
    """
    n = len(x)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def unit(rows: np.ndarray | slice) -> np.ndarray:
        v = x[rows].astype(np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def pairs_within(rows: np.ndarray) -> None:
        sub = unit(rows)
        for s in range(0, len(rows), _BLOCK):
            sims = sub[s : s + _BLOCK] @ sub.T  # (b, m)
            bi, bj = np.nonzero(sims >= threshold)
            keep = bj > bi + s
            found.append((rows[bi[keep] + s], rows[bj[keep]], sims[bi[keep], bj[keep]]))

    if n <= exact_below:
        pairs_within(np.arange(n))
    else:
        rng = np.random.default_rng(seed)
        nlist = int(math.sqrt(n))
        sample = unit(np.sort(rng.choice(n, min(n, nlist * 40), replace=False)))
        cent = spherical_kmeans(sample, nlist, 8, rng)
        best2 = np.concatenate(
            [np.argsort(-(unit(slice(s, s + _BLOCK)) @ cent.T), axis=1)[:, :2] for s in range(0, n, _BLOCK)]
        )
        rows = np.repeat(np.arange(n), 2)
        lists = best2.reshape(-1)  # each row sits in its two best buckets
        order = np.argsort(lists, kind="stable")
        bounds = np.searchsorted(lists[order], np.arange(nlist + 1))
        for j in range(nlist):
            pairs_within(rows[order[bounds[j] : bounds[j + 1]]])
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    i, j, s = (np.concatenate(p) for p in zip(*found, strict=True))
    return i, j, s


def find_duplicates(store, model_id: str, threshold: float = 0.95) -> list[DuplicateGroup]:
    """Exact groups, then near groups (most similar first); each exact group enters the near pass once."""
    if not 0.0 < threshold <= 1.0:
        raise UsageError(f"threshold must be in (0, 1], got {threshold}")
    exact = exact_groups(store)
    copies = {i for g in exact for i in g[1:]}  # all but the first of each exact group
    ids, i8, scales, _ = store.embedding_rows(model_id)
    order = np.argsort(ids, kind="stable")  # one row per image ((image, model) is the key), in id order
    ids, i8 = ids[order], i8[order]
    rep = np.array([i not in copies for i in ids.tolist()], bool)
    ids, x = ids[rep], i8[rep]  # int8 rows: the per-vector scale cancels in a cosine
    comps = _Components()
    for a, b, s in zip(*near_pairs(x, threshold), strict=True):
        comps.union(int(ids[a]), int(ids[b]), float(s))
    near = sorted(comps.groups(), key=lambda g: -g[1])
    groups = [("exact", g, 1.0) for g in exact] + [("near", g, s) for g, s in near]
    out = []
    for kind, members, score in groups:
        recs = {r.id: r for r in store.image_info(members)}
        present = [i for i in members if i in recs]
        if len(present) > 1:
            out.append(DuplicateGroup(kind, present, [Path(recs[i].path) for i in present], score))
    return out


@dataclass(frozen=True)
class TrashPlan:
    """What a confirmed 'Move to Trash' may move, and what it refuses with the reason (nothing is deleted:
    the GUI moves `move` to the system Trash, from where the person can put files back)."""

    move: list[tuple[int, Path]]
    refused: list[tuple[Path, str]]


def plan_trash(groups: list[DuplicateGroup], chosen: set[int], roots: list[Path]) -> TrashPlan:
    """Chosen group members that may go to the Trash: files inside a library folder, still on disk, and
    never the last member of a group (one copy is always kept)."""
    resolved = [Path(r).resolve() for r in roots]
    move, refused = [], []
    for g in groups:
        picked = [(i, p) for i, p in zip(g.image_ids, g.paths, strict=True) if i in chosen]
        if picked and len(picked) == len(g.image_ids):
            keep_i, keep_p = picked.pop(0)
            refused.append((keep_p, "every copy of its group was chosen; this one is kept"))
        for i, p in picked:
            rp = Path(p).resolve()
            if not any(rp.is_relative_to(r) for r in resolved):
                refused.append((Path(p), "outside every library folder"))
            elif not rp.is_file():
                refused.append((Path(p), "no longer on disk"))
            elif i not in {m for m, _ in move}:
                move.append((i, Path(p)))
    return TrashPlan(move, refused)
