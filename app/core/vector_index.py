"""In-memory compact search index: every vector scanned, cheaply first, exactly where it can matter.

Rows are kept rotated into the corpus' principal axes (an orthogonal map: inner products unchanged)
and stored as int8 in two column blocks, the leading `prefix_dims` coordinates and the rest, each
with a per-row scale. A query scores the prefix of every row (1/4 of a full int8 scan), then adds
the rest's term for rows in prefix order until no unscored row can still enter the pool:

    rescore while  prefix(x) + allowance >= pool-th best score so far        (capped at max_rescore)
    allowance = mean + std * sqrt(2 ln n) of the rest terms seen on the rows rescored so far

(the expected largest of n Gaussian draws with those moments). The rule reads the data it meets,
not knobs fitted to one corpus: a query whose rest terms are large rescores more rows. Nothing is
trained on the first rows and then trusted as the library grows, unlike an IVF's lists (which lost
recall on shifted queries and on drifting libraries, bench/search.py). The rotation is refitted as
the corpus grows; a stale one only makes the allowance (and the cost) larger, never the result wrong.
The scores are int8-approximate (the query's two blocks are quantised to int8 like the rows, so a
score is an exact integer dot product times the scales; SimSIMD's int8 kernels compute it without a
float32 copy of the rows): callers rescore the returned pool from the store's float16 copy.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from app.core.vectors import quantize_int8

_CHUNK = 16384  # rows converted at a time when rotating, so no (n, d) float32 copy is ever held
_GATHER_ROWS = 2048  # rows gathered at a time for a scan of scattered rows (the copy stays in cache)
_THREADED_SCAN_ELEMS = 1 << 22  # whole-block scans from this size use several threads (scan)


@dataclass(frozen=True)
class IndexConfig:
    """Knobs of the candidate stage; none of them trades recall for speed on a particular corpus."""

    exhaustive_below: int = 20_000  # under this many rows every row is scored in full (< 3 ms)
    prefix_dims: int = 128  # leading principal coordinates scanned for every row
    first_pass: int = 2048  # rows (by prefix score) whose full score is computed first
    max_rescore_fraction: float = 1 / 32  # cap of the full-score stage as a share of the rows ...
    min_rescore_cap: int = 8192  # ... but never below this many
    refit_growth: float = 4.0  # refit the rotation once the corpus grew this much since the last fit
    fit_rows: int = 20_000  # rows sampled for the principal axes
    seed: int = 0


class Candidates(NamedTuple):
    """Candidate image ids with their approximate (int8) cosine scores, best first."""

    ids: np.ndarray  # int64 (m,)
    scores: np.ndarray  # float32 (m,)


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def principal_axes(x: np.ndarray) -> np.ndarray:
    """(m, d) rows -> (d, d) orthogonal matrix whose columns are the axes of E[x x^T], largest first."""
    x = np.asarray(x, np.float64)
    w, v = np.linalg.eigh(x.T @ x / max(1, len(x)))  # uncentred: inner products, not distances, matter
    return np.ascontiguousarray(v[:, np.argsort(-w)], dtype=np.float32)


def quantize_query(q: np.ndarray) -> tuple[np.ndarray, float]:
    """(int8 (1, e), scale) of a query block, as the rows are stored: q ~= q8 * scale."""
    q8, scale = quantize_int8(np.asarray(q, np.float32).reshape(1, -1))
    return q8, float(scale[0])


def scan(block: np.ndarray, q8: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """float32 (n,): the int8 dot products of the int8 (n, e) rows (or the `rows` of it) with int8 q8 (1, e).

    SimSIMD's int8 kernels (AVX-512 VNNI / AVX2 / NEON) read the int8 bytes directly; a numpy scan
    had to cast every block to float32 first, which cost ~3x its matvec. The sums are integers below
    2^24 (e <= 1040 columns of |x| <= 127), so the float32 results are exact: any split of the rows
    (threads, gather chunks) gives bitwise the same scores.
    """
    import simsimd  # imported on the first scan: a process that never searches does not load it

    n = len(block) if rows is None else len(rows)
    out = np.empty((n, 1), np.float32)
    if n == 0:
        return out.reshape(n)
    if rows is not None:  # gather in cache-sized chunks instead of one (m, e) copy
        buf = np.empty((min(_GATHER_ROWS, n), block.shape[1]), np.int8)
        for a in range(0, n, _GATHER_ROWS):
            m = min(_GATHER_ROWS, n - a)
            np.take(block, rows[a : a + m], axis=0, out=buf[:m], mode="clip")  # rows are valid
            simsimd.cdist(buf[:m], q8, metric="dot", out=out[a : a + m])
        return out.reshape(n)
    workers = _scan_workers(n * block.shape[1])
    if workers == 1:
        simsimd.cdist(block, q8, metric="dot", out=out)
        return out.reshape(n)
    # Our own threads, not SimSIMD's `threads=` (OpenMP): its workers spin after each scan and took the
    # CPU from the rest of the query on 2 shared cores (measured: the whole query 1.6x slower).
    per = -(-n // workers)
    pool = _scan_pool(workers - 1)  # the calling thread scans the first part itself
    jobs = [
        pool.submit(simsimd.cdist, block[a : a + per], q8, metric="dot", out=out[a : a + per])
        for a in range(per, n, per)
    ]
    simsimd.cdist(block[:per], q8, metric="dot", out=out[:per])
    for job in jobs:
        job.result()
    return out.reshape(n)


def _scan_workers(elements: int) -> int:
    """Threads for a whole-block scan: one below ~4M elements (thread hand-off would cost more than it
    saves), else one per CPU this process may use, at most 4 (the scan is bound by memory after that)."""
    if elements < _THREADED_SCAN_ELEMS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity masks
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


_POOLS: dict = {}  # workers -> ThreadPoolExecutor, started on the first big scan (none in a small search)


def _scan_pool(workers: int):
    if workers not in _POOLS:
        from concurrent.futures import ThreadPoolExecutor

        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="fovea-scan")
    return _POOLS[workers]


class VectorIndex:
    """Normalised embeddings kept as rotated int8 + scales, searchable by inner product, grown incrementally."""

    def __init__(self, dim: int, config: IndexConfig | None = None):
        self.dim = dim
        self.config = config or IndexConfig()
        self.split = min(self.config.prefix_dims, dim)
        self._n = 0
        self._ids = np.empty(0, np.int64)
        self._pre = np.empty((0, self.split), np.int8)  # leading rotated coordinates
        self._rest = np.empty((0, dim - self.split), np.int8)  # the other coordinates
        self._sp = np.empty(0, np.float32)  # per-row scale of the prefix block
        self._sr = np.empty(0, np.float32)  # per-row scale of the rest block
        self._alive = np.empty(0, bool)
        self._live = 0  # count of alive rows
        self._max_id = -1  # an id above every id ever added cannot be present (appends skip the lookup)
        self._rot: np.ndarray | None = None  # (d, d) rotation; None = identity (before the first fit)
        self._fitted_at = 0
        self._id_order: np.ndarray | None = None  # live positions sorted by id, rebuilt lazily

    # ---- size -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._live

    @property
    def fitted(self) -> bool:
        return self._rot is not None

    @property
    def nbytes(self) -> int:
        """Bytes of the rows held (spare capacity is allocated but never touched, so not resident)."""
        rows = [self._ids, self._pre, self._rest, self._sp, self._sr, self._alive]
        total = sum(a[: self._n].nbytes for a in rows)
        return int(total + sum(a.nbytes for a in (self._rot, self._id_order) if a is not None))

    @property
    def fitted_at(self) -> int:
        return self._fitted_at

    # ---- persistence (app.core.index_file) -------------------------------------------------
    def export_arrays(self) -> dict[str, np.ndarray]:
        """The live rows' arrays (views when nothing was retired), plus the rotation when fitted."""
        n = self._n
        if self._live == n:
            rows: slice | np.ndarray = slice(0, n)
        else:
            rows = np.flatnonzero(self._alive[:n])
        out = {
            "ids": self._ids[rows],
            "pre": self._pre[rows],
            "rest": self._rest[rows],
            "sp": self._sp[rows],
            "sr": self._sr[rows],
        }
        if self._rot is not None:
            out["rot"] = self._rot
        return out

    @classmethod
    def from_arrays(
        cls,
        dim: int,
        arrays: dict[str, np.ndarray],
        *,
        prefix_dims: int,
        fitted_at: int,
        config: IndexConfig | None = None,
    ) -> VectorIndex:
        """An index over `export_arrays()` output (e.g. memory maps), every row live; shapes are checked."""
        config = config or IndexConfig()
        if prefix_dims != min(config.prefix_dims, dim):
            config = replace(config, prefix_dims=prefix_dims)
        index = cls(dim, config)
        ids = arrays["ids"]
        n = len(ids)
        shapes = {
            "pre": (n, index.split),
            "rest": (n, dim - index.split),
            "sp": (n,),
            "sr": (n,),
        }
        for name, shape in shapes.items():
            if arrays[name].shape != shape:
                raise ValueError(f"{name} has shape {arrays[name].shape}, expected {shape}")
        rot = arrays.get("rot")
        if rot is not None and rot.shape != (dim, dim):
            raise ValueError(f"rot has shape {rot.shape}, expected {(dim, dim)}")
        index._ids, index._pre, index._rest = ids, arrays["pre"], arrays["rest"]
        index._sp, index._sr = arrays["sp"], arrays["sr"]
        index._alive = np.ones(n, bool)
        index._n = index._live = n
        index._max_id = int(ids.max()) if n else -1
        index._rot = None if rot is None else np.asarray(rot, np.float32)
        index._fitted_at = int(fitted_at)
        return index

    # ---- growth -----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, i8: np.ndarray, scales: np.ndarray) -> None:
        """Append rows (int8 + scale in the embedding's own basis); an id already present is replaced."""
        ids = np.asarray(ids, np.int64)
        i8 = np.asarray(i8, np.int8).reshape(len(ids), self.dim)
        scales = np.asarray(scales, np.float32).reshape(len(ids))
        if len(ids) == 0:
            return
        ids, first = np.unique(ids[::-1], return_index=True)  # the last copy of a repeated id wins
        keep = len(i8) - 1 - first
        i8, scales = i8[keep], scales[keep]
        if ids[0] <= self._max_id:  # ids are sorted: only then can one be present already
            self.remove(ids)
        self._max_id = max(self._max_id, int(ids[-1]))
        self._reserve(self._n + len(ids))
        for s in range(0, len(ids), _CHUNK):
            x = i8[s : s + _CHUNK].astype(np.float32) * scales[s : s + _CHUNK, None]
            self._put(slice(self._n + s, self._n + s + len(x)), x @ self._rot if self._rot is not None else x)
        sl = slice(self._n, self._n + len(ids))
        self._ids[sl], self._alive[sl] = ids, True
        self._n += len(ids)
        self._live += len(ids)
        self._id_order = None
        alive = self._live
        if alive >= self.config.exhaustive_below and alive > self.config.refit_growth * self._fitted_at:
            self._fit()

    def _put(self, rows: slice, xr: np.ndarray) -> None:
        """Store rotated float rows (m, d) as the two int8 blocks with their scales."""
        self._pre[rows], self._sp[rows] = quantize_int8(xr[:, : self.split])
        if self.split < self.dim:
            self._rest[rows], self._sr[rows] = quantize_int8(xr[:, self.split :])
        else:
            self._sr[rows] = 1.0

    def _rotated(self, rows: slice) -> np.ndarray:
        """The stored rows back as float32 in the current rotated basis (m, d)."""
        return np.concatenate(
            [
                self._pre[rows].astype(np.float32) * self._sp[rows, None],
                self._rest[rows].astype(np.float32) * self._sr[rows, None],
            ],
            axis=1,
        )

    def remove(self, ids: np.ndarray) -> None:
        """Retire rows by image id (ids not present are ignored)."""
        pos = self._positions(np.asarray(ids, np.int64))
        if len(pos):
            self._alive[pos] = False
            self._live -= len(pos)
            self._id_order = None

    def _reserve(self, n: int) -> None:
        if n <= len(self._ids):
            return
        cap = max(n, int(len(self._ids) * 1.5), 1024)  # geometric growth keeps appends amortised O(1)

        def grow(a: np.ndarray) -> np.ndarray:
            out = np.empty((cap,) + a.shape[1:], a.dtype)
            out[: self._n] = a[: self._n]
            return out

        self._ids, self._pre, self._rest = grow(self._ids), grow(self._pre), grow(self._rest)
        self._sp, self._sr, self._alive = grow(self._sp), grow(self._sr), grow(self._alive)

    def _fit(self) -> None:
        """Principal axes of a sample of live rows; every row re-expressed in them, retired rows dropped."""
        cfg = self.config
        live = np.flatnonzero(self._alive[: self._n])
        rng = np.random.default_rng(cfg.seed)
        sample = np.sort(rng.choice(live, size=min(len(live), cfg.fit_rows), replace=False))
        axes = principal_axes(self._rotated(sample))  # in the current basis
        # Compacting in place is safe: position live[j] >= j, so every source row is read before written.
        for s in range(0, len(live), _CHUNK):
            src = live[s : s + _CHUNK]
            x = self._rotated(src) @ axes
            dst = slice(s, s + len(src))
            self._ids[dst] = self._ids[src]
            self._put(dst, x)
        self._rot = axes if self._rot is None else self._rot @ axes
        self._n = len(live)
        self._alive[: self._n] = True
        self._alive[self._n :] = False
        self._fitted_at = len(live)
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
        if len(sorted_ids) == 0:
            return np.empty(0, np.int64)
        at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return self._id_order[at[sorted_ids[at] == ids]]

    def contains(self, image_id: int) -> bool:
        return len(self._positions(np.array([image_id], np.int64))) > 0

    # ---- search -----------------------------------------------------------------------------
    def _query(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(q, np.float32).reshape(self.dim)
        qr = q @ self._rot if self._rot is not None else q
        return np.ascontiguousarray(qr[: self.split]), np.ascontiguousarray(qr[self.split :])

    def _block_scores(
        self,
        block: np.ndarray,
        scales: np.ndarray,
        q: tuple[np.ndarray, float],
        pos: np.ndarray | None = None,
    ) -> np.ndarray:
        """One block's (prefix or rest) terms of every row (pos None) or of the rows `pos`."""
        q8, s_q = q
        if pos is None:
            out = scan(block[: self._n], q8)
            out *= scales[: self._n]
        else:
            out = scan(block, q8, pos)
            out *= scales[pos]
        out *= s_q
        return out

    def _prefix_scores(self, q_pre: tuple[np.ndarray, float], pos: np.ndarray | None = None) -> np.ndarray:
        return self._block_scores(self._pre, self._sp, q_pre, pos)

    def _rest_scores(self, pos: np.ndarray, q_rest: tuple[np.ndarray, float]) -> np.ndarray:
        return self._block_scores(self._rest, self._sr, q_rest, pos)

    def search(self, q: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Candidates:
        """Top-k rows by approximate inner product with the normalised query `q` (d,).

        Rows and query are both int8 here (the query quantised per block as the rows are), so each
        score is an exact integer dot product times the two scales. `allowed_ids` restricts the result
        to those image ids (None: no restriction).
        """
        if allowed_ids is not None:
            allowed = np.zeros(self._n, bool)
            allowed[self._positions(np.asarray(allowed_ids, np.int64))] = True
        else:
            allowed = self._alive[: self._n]
        n_allowed = int(allowed.sum())
        if n_allowed == 0 or k <= 0:
            return Candidates(np.empty(0, np.int64), np.empty(0, np.float32))
        f_pre, f_rest = self._query(q)
        q_pre = quantize_query(f_pre)
        q_rest = quantize_query(f_rest) if self.split < self.dim else (np.zeros((1, 0), np.int8), 0.0)
        if n_allowed < self.config.exhaustive_below or self.split == self.dim:
            pos = np.flatnonzero(allowed)
            scores = self._prefix_scores(q_pre, pos)
            if self.split < self.dim:
                scores += self._rest_scores(pos, q_rest)
        else:
            pos, scores = self._two_stage(q_pre, q_rest, k, allowed, n_allowed)
        best = top_indices(scores, k)
        return Candidates(self._ids[pos[best]], scores[best].astype(np.float32))

    def _two_stage(
        self,
        q_pre: tuple[np.ndarray, float],
        q_rest: tuple[np.ndarray, float],
        k: int,
        allowed: np.ndarray,
        n_allowed: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Prefix scores for every allowed row, full scores where the rule of the module docstring says."""
        cfg = self.config
        if n_allowed * 4 > self._n:  # contiguous scan; excluded rows sink below every threshold
            prefix = self._prefix_scores(q_pre)
            if n_allowed < self._n:
                prefix[~allowed] = -np.inf
            rows = None
        else:  # a selective filter: score only its rows
            rows = np.flatnonzero(allowed)
            prefix = self._prefix_scores(q_pre, rows)
        cap = max(cfg.min_rescore_cap, int(cfg.max_rescore_fraction * n_allowed), k)
        first = min(max(cfg.first_pass, 2 * k), n_allowed)
        # Thresholds from a strided sample (an exact argpartition of 1M scores costs ~10 ms): t0 admits
        # about `first` rows, tc about 1.5x the cap. The rows above tc are listed once, and every later
        # pass reads that list instead of all rows; it is widened if the rule ever reaches below tc.
        stride = max(1, len(prefix) // 16384)
        sample = prefix[::stride]
        lowest = float(np.finfo(np.float32).min)  # never admit excluded (-inf) rows
        at = [max(0, len(sample) - max(1, min(len(sample), r // stride))) for r in (first, cap + cap // 2)]
        part = np.partition(sample, sorted(set(at)))
        t0, tc = (max(float(part[a]), lowest) for a in at)
        if cap + cap // 2 >= n_allowed:
            tc = lowest
        cand = np.flatnonzero(prefix >= tc)
        vals = prefix[cand]
        done = np.zeros(len(cand), bool)
        pos_parts: list[np.ndarray] = []
        rest_parts: list[np.ndarray] = []
        new = np.flatnonzero(vals >= t0)
        log_n = math.sqrt(2.0 * math.log(max(2, n_allowed)))
        scored = 0
        while len(new):
            if scored + len(new) > cap:  # keep the best by prefix score within the cap (a set: no sort)
                room = cap - scored
                new = new[np.argpartition(-vals[new], room - 1)[:room]] if room > 0 else new[:0]
            if not len(new):
                break
            done[new] = True
            pos_parts.append(new)
            rest_parts.append(self._rest_scores(cand[new] if rows is None else rows[cand[new]], q_rest))
            scored += len(new)
            pos, rest = np.concatenate(pos_parts), np.concatenate(rest_parts)
            full = vals[pos] + rest
            kk = min(k, len(full))
            kth = np.partition(full, len(full) - kk)[len(full) - kk]
            allowance = max(float(rest.max()), float(rest.mean() + rest.std() * log_n))
            floor = max(float(kth - allowance), lowest)
            # The rule reaches below the listed rows and the list is shorter than the cap: list those too
            # (a list of >= cap rows already holds the best `cap` by prefix score, all the cap admits).
            if floor < tc and len(cand) < cap:
                more = np.flatnonzero((prefix >= floor) & (prefix < tc))
                cand, vals = np.concatenate([cand, more]), np.concatenate([vals, prefix[more]])
                done = np.concatenate([done, np.zeros(len(more), bool)])
                tc = floor
            new = np.flatnonzero((vals >= floor) & ~done)
        pos = cand[np.concatenate(pos_parts)]
        full = prefix[pos] + np.concatenate(rest_parts)
        return (pos if rows is None else rows[pos]), full
