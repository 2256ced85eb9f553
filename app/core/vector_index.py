"""In-memory compact search index: int8 vectors with a per-vector scale, grouped by an IVF clustering.

Measured on 2 CPU cores (bench/search.py): a full int8 scan of 1M x 512 is bandwidth-bound at ~40 ms,
so beyond `brute_force_below` rows the corpus is clustered with spherical k-means and a query scans
only the `nprobe` lists whose centroids score best. The int8 scores are approximate: callers rescore
the returned candidate pool with full-precision vectors (the store's float16 copy) to rank the top k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

_CHUNK = 16384  # rows dequantised at a time, so a full scan never holds an (n, d) float32 copy
# Rows converted per step of a scan: a 512 x d float32 buffer stays in cache (4x faster than converting a
# whole list at once), and at this size OpenBLAS runs the matvec on one thread (1024 rows went threaded
# and was 10x slower on the shared 2-core machine).
_SCAN_ROWS = 512


@dataclass(frozen=True)
class IndexConfig:
    """Knobs of the IVF stage; the defaults were chosen with bench/search.py."""

    brute_force_below: int = 20_000  # under this many rows a full int8 scan costs < 3 ms
    nprobe: int = 24  # lists scanned per query (2.4% of rows at 1M: recall@10 0.998 in the bench) ...
    min_scan_rows: int = 10_000  # ... but at least this many rows: 24 lists at 100k x 768 gave only 0.986
    train_rows_per_list: int = 40  # k-means sample size per list
    train_iters: int = 8
    retrain_growth: float = 4.0  # retrain once the corpus grew this much since the clustering
    merge_fraction: float = 0.05  # fold the unclustered tail into the lists past this share of rows
    seed: int = 0


class Candidates(NamedTuple):
    """Candidate image ids with their approximate (int8) cosine scores, best first."""

    ids: np.ndarray  # int64 (m,)
    scores: np.ndarray  # float32 (m,)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


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


class VectorIndex:
    """Normalised embeddings kept as int8 + scale, searchable by inner product, grown incrementally."""

    def __init__(self, dim: int, config: IndexConfig | None = None):
        self.dim = dim
        self.config = config or IndexConfig()
        self._n = 0
        self._ids = np.empty(0, np.int64)
        self._i8 = np.empty((0, dim), np.int8)
        self._scales = np.empty(0, np.float32)
        self._alive = np.empty(0, bool)
        self._lists = np.empty(0, np.int32)  # IVF list of each row (-1 before any clustering)
        self._centroids: np.ndarray | None = None  # (nlist, d) float32, unit rows
        self._offsets = np.zeros(1, np.int64)  # rows [offsets[j], offsets[j+1]) form list j ...
        self._n_sorted = 0  # ... for rows below n_sorted; the rows after form an unsorted tail
        self._trained_at = 0
        self._id_order: np.ndarray | None = None  # live positions sorted by id, rebuilt lazily
        self._buf: np.ndarray | None = None  # scan buffer (not thread-safe: one search at a time)

    # ---- size -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._alive[: self._n].sum())

    @property
    def nlist(self) -> int:
        return 0 if self._centroids is None else len(self._centroids)

    @property
    def nbytes(self) -> int:
        """Resident bytes of every array the index holds (capacity included)."""
        arrays = [self._ids, self._i8, self._scales, self._alive, self._lists, self._offsets]
        if self._centroids is not None:
            arrays.append(self._centroids)
        if self._id_order is not None:
            arrays.append(self._id_order)
        return int(sum(a.nbytes for a in arrays))

    # ---- growth -----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, i8: np.ndarray, scales: np.ndarray) -> None:
        """Append rows; an id already present is replaced (its old row is retired)."""
        ids = np.asarray(ids, np.int64)
        i8 = np.asarray(i8, np.int8).reshape(len(ids), self.dim)
        scales = np.asarray(scales, np.float32).reshape(len(ids))
        if len(ids) == 0:
            return
        ids, first = np.unique(ids[::-1], return_index=True)  # the last copy of a repeated id wins
        keep = len(i8) - 1 - first
        i8, scales = i8[keep], scales[keep]
        self.remove(ids)
        self._reserve(self._n + len(ids))
        sl = slice(self._n, self._n + len(ids))
        self._ids[sl], self._i8[sl], self._scales[sl], self._alive[sl] = ids, i8, scales, True
        self._lists[sl] = self._assign(i8, scales) if self._centroids is not None else -1
        self._n += len(ids)
        self._id_order = None
        self._maintain()

    def remove(self, ids: np.ndarray) -> None:
        """Retire rows by image id (ids not present are ignored)."""
        pos = self._positions(np.asarray(ids, np.int64))
        if len(pos):
            self._alive[pos] = False
            self._id_order = None

    def _reserve(self, n: int) -> None:
        if n <= len(self._ids):
            return
        cap = max(n, int(len(self._ids) * 1.5), 1024)  # geometric growth keeps appends amortised O(1)

        def grow(a: np.ndarray) -> np.ndarray:
            out = np.empty((cap,) + a.shape[1:], a.dtype)
            out[: self._n] = a[: self._n]
            return out

        self._ids, self._i8, self._scales = grow(self._ids), grow(self._i8), grow(self._scales)
        self._alive, self._lists = grow(self._alive), grow(self._lists)

    def _maintain(self) -> None:
        cfg, alive = self.config, len(self)
        if alive >= cfg.brute_force_below and (
            self._centroids is None or alive > cfg.retrain_growth * self._trained_at
        ):
            self._train()
        elif self._centroids is not None and self._n - self._n_sorted > cfg.merge_fraction * self._n:
            self._sort_rows()

    # ---- clustering -------------------------------------------------------------------------
    def _dequant(self, rows: slice | np.ndarray) -> np.ndarray:
        return self._i8[rows].astype(np.float32) * self._scales[rows][:, None]

    def _assign(self, i8: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Nearest centroid (by inner product) of each int8 row, in chunks."""
        out = np.empty(len(i8), np.int32)
        for s in range(0, len(i8), _CHUNK):
            block = i8[s : s + _CHUNK].astype(np.float32)  # the scale is positive: argmax ignores it
            out[s : s + _CHUNK] = np.argmax(block @ self._centroids.T, axis=1)
        return out

    def _train(self) -> None:
        """Spherical k-means on a sample, then every live row assigned to its nearest centroid."""
        cfg = self.config
        live = np.flatnonzero(self._alive[: self._n])
        nlist = int(min(4096, max(16, math.sqrt(len(live)))))  # ~sqrt(n) lists balances probe and scan
        rng = np.random.default_rng(cfg.seed)
        sample = rng.choice(live, size=min(len(live), nlist * cfg.train_rows_per_list), replace=False)
        x = self._dequant(np.sort(sample))  # (m, d)
        cent = spherical_kmeans(x, nlist, cfg.train_iters, rng)
        self._centroids = cent.astype(np.float32)
        self._lists[: self._n] = self._assign(self._i8[: self._n], self._scales[: self._n])
        self._trained_at = len(live)
        self._sort_rows()

    def _sort_rows(self) -> None:
        """Drop retired rows and lay the rest out contiguously by list (the tail becomes empty)."""
        live = np.flatnonzero(self._alive[: self._n])
        order = live[np.argsort(self._lists[live], kind="stable")]
        n = len(order)
        self._ids[:n], self._i8[:n] = self._ids[order], self._i8[order]
        self._scales[:n], self._lists[:n] = self._scales[order], self._lists[order]
        self._alive[:n] = True
        self._alive[n:] = False
        self._n = self._n_sorted = n
        counts = np.bincount(self._lists[:n], minlength=self.nlist)
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._id_order = None

    # ---- lookup -----------------------------------------------------------------------------
    def _positions(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of the live rows holding these ids (live ids are unique)."""
        if self._n == 0 or len(ids) == 0:
            return np.empty(0, np.int64)
        if self._id_order is None:
            live = np.flatnonzero(self._alive[: self._n])
            self._id_order = live[np.argsort(self._ids[live], kind="stable")]
        sorted_ids = self._ids[self._id_order]
        at = np.minimum(np.searchsorted(sorted_ids, ids), max(len(sorted_ids) - 1, 0))
        if len(sorted_ids) == 0:
            return np.empty(0, np.int64)
        return self._id_order[at[sorted_ids[at] == ids]]

    def contains(self, image_id: int) -> bool:
        return len(self._positions(np.array([image_id], np.int64))) > 0

    # ---- search -----------------------------------------------------------------------------
    def _scan(self, rows: slice | np.ndarray, q: np.ndarray) -> np.ndarray:
        """Approximate scores (i8 . q) * scale of the given rows, through a cache-sized float32 buffer."""
        if isinstance(rows, slice):
            n, base = rows.stop - rows.start, rows.start

            def block(a: int, b: int) -> np.ndarray:
                return self._i8[base + a : base + b]
        else:
            n = len(rows)

            def block(a: int, b: int) -> np.ndarray:
                return self._i8[rows[a:b]]

        if self._buf is None or self._buf.shape[1] != self.dim:
            self._buf = np.empty((_SCAN_ROWS, self.dim), np.float32)
        out = np.empty(n, np.float32)
        for a in range(0, n, _SCAN_ROWS):
            src = block(a, min(a + _SCAN_ROWS, n))
            m = len(src)
            np.copyto(self._buf[:m], src, casting="unsafe")
            out[a : a + m] = self._buf[:m] @ q
        return out * self._scales[rows]

    def search(self, q: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Candidates:
        """Top-k rows by approximate inner product with the normalised query `q` (d,).

        `allowed_ids` restricts the result to those image ids (None: no restriction).
        """
        q = np.asarray(q, np.float32).reshape(self.dim)
        allowed = None
        if allowed_ids is not None:
            allowed = np.zeros(self._n, bool)
            allowed[self._positions(np.asarray(allowed_ids, np.int64))] = True
        else:
            allowed = self._alive[: self._n]
        n_allowed = int(allowed.sum())
        if n_allowed == 0 or k <= 0:
            return Candidates(np.empty(0, np.int64), np.empty(0, np.float32))
        if self._centroids is None or n_allowed < self.config.brute_force_below:
            if allowed_ids is None:  # contiguous scan, retired rows dropped after
                pos = np.arange(self._n)
                scores = self._scan(slice(0, self._n), q)
                pos, scores = pos[allowed], scores[allowed]
            else:
                pos = np.flatnonzero(allowed)
                scores = self._scan(pos, q)
        else:
            pos, scores = self._probe(q, k, allowed)
        best = _top(scores, k)
        return Candidates(self._ids[pos[best]], scores[best].astype(np.float32))

    def _probe(self, q: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scan the best lists (and the tail) until at least k allowed rows were seen."""
        order = np.argsort(-(self._centroids @ q))
        avg_list = max(1.0, self._n_sorted / max(1, self.nlist))
        nprobe = max(1, self.config.nprobe, math.ceil(self.config.min_scan_rows / avg_list))
        tail = np.arange(self._n_sorted, self._n)
        tail = tail[allowed[tail]]
        pos_parts, score_parts = [tail], [self._scan(tail, q)]
        seen, start = len(tail), 0
        while start < len(order):
            for j in order[start:nprobe]:
                a, b = self._offsets[j], self._offsets[j + 1]
                if a == b:
                    continue
                ok = allowed[a:b]
                idx = np.arange(a, b)[ok]
                if len(idx) == b - a:
                    score_parts.append(self._scan(slice(a, b), q))
                else:
                    score_parts.append(self._scan(idx, q))
                pos_parts.append(idx)
                seen += len(idx)
            start = nprobe
            if seen >= k:
                break
            nprobe *= 2  # a selective filter left too few rows in the probed lists: widen
        return np.concatenate(pos_parts), np.concatenate(score_parts)
