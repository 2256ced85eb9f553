"""Compact forms of normalised embeddings: int8 with a per-vector scale, and float16."""

from __future__ import annotations

import numpy as np


def quantize_int8(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float -> (int8 (n, d), float32 scale (n,)) with v ~= q * scale[:, None].

    Symmetric per-vector scaling keeps the full int8 range for every row whatever its peak.
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float32))
    peak = np.abs(v).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(v / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def dequantize_int8(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * np.asarray(scale, np.float32)[:, None]
