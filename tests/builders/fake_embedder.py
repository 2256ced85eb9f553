"""The one deterministic stand-in for a CLIP embedder, for store, indexer, search and tagging tests.

Images: a colour histogram and a coarse colour layout, mapped by a fixed random projection and
L2-normalised (different pictures get different vectors, identical pixels identical ones); with
`images="mean-colour"` an image is instead the text vector of its rounded mean colour, so a test can
name the vector a picture gets. Texts: a fixed random unit vector per text (`text_vector`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

from app.core.backends import l2_normalize


class FakeEmbedder:
    """Implements app.core.backends.Embedder; counts what it embedded."""

    model_type = "clip"
    logit_bias = None
    folder = None  # no model folder: an open vocabulary and the family's weak-match defaults

    def __init__(
        self,
        model_id: str = "fake-clip",
        dim: int = 32,
        image_size: int = 32,
        seed: int = 0,
        logit_scale: float = 100.0,
        images: Literal["pixels", "mean-colour"] = "pixels",
    ) -> None:
        self.model_id = model_id
        self.dim = dim
        self.image_size = image_size
        self.logit_scale = logit_scale
        self.weak_cosine: dict[str, float] = {}  # the family defaults
        self.images = images
        rng = np.random.default_rng(seed)
        self._proj = rng.standard_normal((64 + 48, dim)).astype(np.float32)
        self.embedded = 0  # images seen by embed_pixels
        self.calls = 0  # embed_pixels calls
        self.image_calls = 0  # embed_images calls
        self.text_calls: list[int] = []  # batch size of each embed_texts call

    @staticmethod
    def text_vector(text: str, dim: int = 32) -> np.ndarray:
        """The fixed unit vector of a text (d,)."""
        return l2_normalize(np.random.default_rng(zlib.crc32(text.encode())).standard_normal((1, dim)))[0]

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Shortest side to image_size, centre crop, [0, 1] floats: (S, S, 3)."""
        s = self.image_size
        w, h = image.size
        k = s / min(w, h)
        im = image.convert("RGB").resize((max(s, round(w * k)), max(s, round(h * k))), Image.BILINEAR)
        left, top = (im.width - s) // 2, (im.height - s) // 2
        return np.asarray(im.crop((left, top, left + s, top + s)), np.float32) / 255.0

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.asarray(pixels, np.float32)
        n, s = pixels.shape[0], pixels.shape[1]
        bins = np.minimum((pixels * 4).astype(np.int64), 3)  # (N, S, S, 3) in 0..3
        code = (bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]).reshape(n, -1)  # (N, S*S)
        hist = np.stack([np.bincount(c, minlength=64) for c in code]).astype(np.float32) / (s * s)
        g = s // 4
        layout = pixels[:, : g * 4, : g * 4].reshape(n, 4, g, 4, g, 3).mean(axis=(2, 4)).reshape(n, 48)
        self.calls += 1
        self.embedded += n
        return l2_normalize(np.concatenate([hist, layout], axis=1) @ self._proj)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.image_calls += 1
        if not images:
            return np.zeros((0, self.dim), np.float32)
        if self.images == "mean-colour":
            means = [str(np.asarray(im).mean(axis=(0, 1)).round().tolist()) for im in images]
            return np.stack([self.text_vector(m, self.dim) for m in means])
        return self.embed_pixels(np.stack([self.preprocess(im) for im in images]))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.text_calls.append(len(texts))
        return np.stack([self.text_vector(t, self.dim) for t in texts]).reshape(len(texts), self.dim)
