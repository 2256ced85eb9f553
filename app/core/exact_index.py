"""The exact candidate path: every stored float16 vector scanned through MLX (mlx_models.common.scan).

Where MLX runs on Metal (Apple silicon) the scan is bandwidth-bound on unified memory and, by the
estimate in the module below, faster than the int8 index at perfect recall; on a CPU the int8 index
(app.core.vector_index) is faster. `ExactPath` makes the choice for a search engine: on MLX's CPU
device it keeps the index without measuring (this machine's exact scan was 7-40x slower); on a GPU
it builds the float16 copy in the background after the first answer, times the next few queries on
both paths, and switches where `prefer_exact` says so. Only the CPU side was measured here (no Mac).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from app.core.vector_index import Candidates, VectorIndex


@dataclass(frozen=True)
class PathTiming:
    """Median seconds per query of one candidate path and its recall@10 on the same probe queries."""

    median_s: float
    recall: float


def prefer_exact(exact: PathTiming, index: PathTiming) -> bool:
    """Use the exact MLX scan where it is at least as fast as the index at equal or better recall."""
    return exact.recall >= index.recall and exact.median_s <= index.median_s


@dataclass(frozen=True)
class PathChoice:
    """The candidate path a search engine uses, and why (timings None when nothing was measured)."""

    exact: bool
    reason: str
    exact_timing: PathTiming | None = None
    index_timing: PathTiming | None = None


def choose_path(device: str, exact: PathTiming | None = None, index: PathTiming | None = None) -> PathChoice:
    """The path for MLX's `device` ("gpu" or "cpu") given the probes' timings (None: not measured)."""
    if device != "gpu":
        return PathChoice(False, f"MLX computes on the {device}: the int8 index is faster there")
    if exact is None or index is None:
        return PathChoice(False, "the exact path is not measured yet")
    if prefer_exact(exact, index):
        return PathChoice(
            True, "the exact scan measured at least as fast, at equal or better recall", exact, index
        )
    return PathChoice(False, "the int8 index measured faster (or the exact scan lost recall)", exact, index)


class ExactIndex:
    """Normalised float16 vectors on the MLX device, searched exactly; ids as in VectorIndex."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._ids = np.empty(0, np.int64)
        self._host = np.empty((0, dim), np.float16)
        self._device = None  # the MLX copy of _host, made lazily after growth

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        return int(self._ids.nbytes + self._host.nbytes)

    def add(self, ids: np.ndarray, f16: np.ndarray) -> None:
        """Append rows; an id already present (or repeated in `ids`: the last copy wins) is replaced."""
        ids = np.asarray(ids, np.int64)
        f16 = np.asarray(f16, np.float16).reshape(len(ids), self.dim)
        ids, first = np.unique(ids[::-1], return_index=True)
        f16 = f16[len(f16) - 1 - first]
        keep = ~np.isin(self._ids, ids)
        self._ids = np.concatenate([self._ids[keep], ids])
        self._host = np.concatenate([self._host[keep], f16])
        self._device = None

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """float32 (len(ids), d) rows of these ids (the probes rescore both paths' pools from them)."""
        ids = np.asarray(ids, np.int64)
        out = np.zeros((len(ids), self.dim), np.float32)  # an id not held scores 0
        if len(self._ids) == 0:
            return out
        order = np.argsort(self._ids)
        at = order[np.minimum(np.searchsorted(self._ids[order], ids), len(order) - 1)]
        found = self._ids[at] == ids
        out[found] = self._host[at[found]]
        return out

    def upload(self) -> None:
        """Copy the rows to the MLX device now (the background build does it, not the first query)."""
        from mlx_models.common.scan import to_device

        if self._device is None:
            self._device = to_device(self._host)

    def search(self, q: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Candidates:
        """Top-k rows by exact inner product with the normalised query (float16 storage precision)."""
        from mlx_models.common.scan import topk_inner

        self.upload()
        mask = None if allowed_ids is None else np.isin(self._ids, np.asarray(allowed_ids, np.int64))
        pos, scores = topk_inner(self._device, q, k, mask)
        return Candidates(self._ids[pos], scores)


class StoreState(NamedTuple):
    """What a copy of the vectors reflects: the store's last embedding rowid and its vectors generation."""

    last_rowid: int
    generation: int


def _timed(path: str, run: Callable[[], Candidates]) -> tuple[Candidates, float]:
    t = time.perf_counter()
    out = run()
    return out, time.perf_counter() - t


def _start_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="fovea-exact-copy", daemon=True).start()


def _mlx_device() -> str:
    from mlx_models.runtime import device_name

    return device_name()


class ExactPath:
    """Which candidate path a search engine takes, measured on the queries it answers.

    `load(last_rowid)` returns (ids, float16 (n, d)) of the store's 'ok' rows up to that rowid, read
    through its own connection: it runs on a background thread. `device`, `start` and `timer` are
    injected so the decision is tested without a GPU. Every other method runs on the engine's thread,
    which alone touches the int8 index.
    """

    def __init__(
        self,
        dim: int,
        load: Callable[[int], tuple[np.ndarray, np.ndarray]],
        *,
        device: Callable[[], str] = _mlx_device,
        start: Callable[[Callable[[], None]], None] = _start_thread,
        timer: Callable[[str, Callable[[], Candidates]], tuple[Candidates, float]] = _timed,
        probes: int = 3,
    ) -> None:
        self.dim = dim
        self._load, self._device, self._start, self._timer = load, device, start, timer
        self.probes = probes
        self.choice: PathChoice | None = None  # None: not decided yet
        self._ready: tuple[ExactIndex, StoreState] | None = None  # published by the background build
        self._building = False
        self._times: dict[str, list[float]] = {"exact": [], "index": []}
        self._recalls: list[float] = []
        self.error: str | None = None  # why the background build failed (the index path then stays)

    def candidates(
        self, index: VectorIndex, q: np.ndarray, n: int, allowed: np.ndarray | None, state: StoreState
    ) -> Candidates:
        """The candidate pool from the path in force. A copy of another store state is dropped; while
        probing, both paths run and are timed, and the exact pool (never worse) is returned."""
        ready = self._ready
        if ready is not None and ready[1] != state:
            self._ready = ready = None  # the store changed since the copy was read: rebuilt later
        if ready is None or (self.choice is not None and not self.choice.exact):
            return index.search(q, n, allowed)
        exact = ready[0]
        if self.choice is not None:  # decided for the exact path
            return exact.search(q, n, allowed)
        got, t_index = self._timer("index", lambda: index.search(q, n, allowed))
        best, t_exact = self._timer("exact", lambda: exact.search(q, n, allowed))
        self._times["index"].append(t_index)
        self._times["exact"].append(t_exact)
        self._recalls.append(_recall_at_10(exact, q, got.ids, best.ids))
        if len(self._recalls) >= self.probes:
            self.choice = choose_path(
                "gpu",
                PathTiming(float(np.median(self._times["exact"])), 1.0),
                PathTiming(float(np.median(self._times["index"])), float(np.mean(self._recalls))),
            )
            if not self.choice.exact:
                self._ready = None  # not used: its memory goes back
        return best

    def answered(self, state: StoreState) -> None:
        """After an answer: decide on a CPU device; on a GPU start a background copy of the store's
        vectors unless one is current, being built, or the index was chosen."""
        if self.choice is None and (device := self._device()) != "gpu":
            self.choice = choose_path(device)
        if self.choice is not None and not self.choice.exact:
            return
        if self._building or (self._ready is not None and self._ready[1] == state):
            return
        self._building = True
        self._start(lambda: self._build(state))

    def _build(self, state: StoreState) -> None:
        try:
            ids, f16 = self._load(state.last_rowid)
            exact = ExactIndex(self.dim)
            exact.add(ids, f16)
            exact.upload()
            self._ready = (exact, state)
        except Exception as e:  # a failed copy only keeps the index path; the reason is kept for status
            self.error = f"{type(e).__name__}: {e}"
            self.choice = PathChoice(False, f"the exact copy could not be built ({self.error})")
        finally:
            self._building = False


def _recall_at_10(exact: ExactIndex, q: np.ndarray, index_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Share of the exact path's top 10 that the index's pool gives after the engine's float16 rescoring."""
    q = np.asarray(q, np.float32)

    def top10(ids: np.ndarray) -> set[int]:
        return set(ids[np.argsort(-(exact.vectors(ids) @ q), kind="stable")[:10]].tolist())

    truth = top10(exact_ids)
    return len(truth & top10(index_ids)) / max(1, len(truth))
