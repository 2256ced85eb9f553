"""Synthetic embedding spaces and stores for the tagging tests (no model needed)."""

from __future__ import annotations

import numpy as np

from app.core.backends import l2_normalize
from app.core.store import Store
from app.core.tag_vocab import LabelMatrix
from tests.builders import rows
from tests.builders.fake_embedder import FakeEmbedder

__all__ = ["FakeEmbedder", "add_images", "mix", "orthogonal_labels"]


def orthogonal_labels(labels: list[str], dim: int = 32, groups: list[str] | None = None) -> LabelMatrix:
    """Labels (then the background) on orthonormal axes, so cosines are easy to state."""
    assert len(labels) + 1 <= dim
    eye = np.eye(dim, dtype=np.float32)
    return LabelMatrix(
        labels=tuple(labels),
        groups=tuple(groups or ["g"] * len(labels)),
        vecs=eye[: len(labels)],
        none=eye[len(labels)],
    )


def mix(weights: dict[int, float], dim: int = 32, noise: float = 0.0, rng=None) -> np.ndarray:
    """A unit vector with the given cosine-like weights on axes (plus optional noise on the free axes)."""
    v = np.zeros(dim, np.float32)
    for axis, w in weights.items():
        v[axis] = w
    if noise:
        v[-8:] += (rng or np.random.default_rng(0)).normal(0, noise, 8)
    return l2_normalize(v[None])[0]


def add_images(store: Store, model_id: str, vectors: np.ndarray, prefix: str = "/lib/img") -> list[int]:
    """One 'ok' image per vector (paths prefix_00000.png, ... under root /lib) with its embedding."""
    folder, stem = prefix.rsplit("/", 1)
    return rows.add_images(store, model_id, vectors, folder, stem + "_{:05d}.png", root="/lib", size=1)
