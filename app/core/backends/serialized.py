"""An embedder shared by threads, its calls run one at a time (the Library's index job and searches)."""

from __future__ import annotations

import threading

from app.core.backends import Embedder


class SerializedEmbedder:
    """An embedder whose calls run one at a time: the index job and a search share one model, and
    backends (MLX streams, torch modules) are not promised to be safe under concurrent calls."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.model_id, self.model_type, self.dim = inner.model_id, inner.model_type, inner.dim
        self.image_size, self.weak_cosine = inner.image_size, inner.weak_cosine
        self.logit_scale, self.logit_bias = inner.logit_scale, inner.logit_bias
        self.preprocess = inner.preprocess  # pure and thread-safe: decode workers call it in parallel
        # settings only: the indexer's decode worker processes run it (the Library indexes through this)
        self.portable_preprocess = getattr(inner, "portable_preprocess", None)
        self.folder = inner.folder  # the model folder its notes (vocabulary, weak-match cuts) come from
        if hasattr(inner, "patch_size"):  # patch-grid towers only: what app.core.explain needs
            self.patch_size = inner.patch_size

    def embed_pixels(self, pixels):
        with self._lock:
            return self._inner.embed_pixels(pixels)

    def embed_images(self, images):
        with self._lock:
            return self._inner.embed_images(images)

    def embed_texts(self, texts):
        with self._lock:
            return self._inner.embed_texts(texts)
