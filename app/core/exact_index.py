"""The exact candidate path: every stored float16 vector scanned through MLX (mlx_models.common.scan).

Where MLX runs on Metal (Apple silicon) the scan is bandwidth-bound on unified memory and, by the
estimate in the module below, faster than the int8 index at perfect recall; on a CPU the int8 index
(app.core.vector_index) is faster. `prefer_exact` makes that choice from measured query times, so no
platform is assumed; on this Linux machine only the CPU side was measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.vector_index import Candidates


@dataclass(frozen=True)
class PathTiming:
    """Median seconds per query of one candidate path and its recall@10 on the same probe queries."""

    median_s: float
    recall: float


def prefer_exact(exact: PathTiming, index: PathTiming) -> bool:
    """Use the exact MLX scan where it is at least as fast as the index at equal or better recall."""
    return exact.recall >= index.recall and exact.median_s <= index.median_s


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
        """Append rows; an id already present is replaced."""
        ids = np.asarray(ids, np.int64)
        f16 = np.asarray(f16, np.float16).reshape(len(ids), self.dim)
        keep = ~np.isin(self._ids, ids)
        self._ids = np.concatenate([self._ids[keep], ids])
        self._host = np.concatenate([self._host[keep], f16])
        self._device = None

    def search(self, q: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Candidates:
        """Top-k rows by exact inner product with the normalised query (float16 storage precision)."""
        from mlx_models.common.scan import to_device, topk_inner

        if self._device is None:
            self._device = to_device(self._host)
        mask = None if allowed_ids is None else np.isin(self._ids, np.asarray(allowed_ids, np.int64))
        pos, scores = topk_inner(self._device, q, k, mask)
        return Candidates(self._ids[pos], scores)
