"""The MLX backend: our port of CLIP/SigLIP, on Metal on a Mac and on the CPU elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mlx_models
from mlx_models.common.errors import ModelError

import mlx.core as mx
import numpy as np
from PIL import Image

from app.core.backends import l2_normalize
from app.core.backends.ids import model_id_for, search_hints
from app.core.errors import BackendError


class MlxEmbedder:
    """`Embedder` over an MLX model folder."""

    name = "mlx"

    def __init__(self, folder: Path) -> None:
        try:
            bundle = mlx_models.load(folder)
        except ModelError as e:
            raise BackendError(str(e)) from e
        if bundle.model_type not in ("clip", "siglip"):
            raise BackendError(f"{folder}: model_type {bundle.model_type!r} is not an image-text embedder")
        self.bundle = bundle
        self.portable_preprocess = bundle.preprocess  # settings only: decode workers run it (indexer)
        self.model_type = bundle.model_type
        self.folder = Path(folder)
        self.model_id = model_id_for(folder)
        self.weak_cosine = search_hints(folder)
        m = bundle.model
        self.logit_scale = float(mx.exp(m.logit_scale).item())
        self.logit_bias = float(m.logit_bias.item()) if hasattr(m, "logit_bias") else None
        self.dim = bundle.embed_dim
        self.image_size = int(bundle.config.vision_config.image_size)
        self.patch_size = int(
            bundle.config.vision_config.patch_size
        )  # the occlusion grid of app.core.explain
        self.device = mlx_models.runtime.device_name()

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.bundle.preprocess(image)

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        out = self.bundle.model.get_image_features(mx.array(np.asarray(pixels, dtype=np.float32)))
        return l2_normalize(np.array(out.astype(mx.float32)))

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_pixels(np.stack([self.preprocess(im) for im in images]))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        tb = self.bundle.tokenize(list(texts))
        out = self.bundle.model.get_text_features(mx.array(tb.input_ids), mx.array(tb.attention_mask))
        return l2_normalize(np.array(out.astype(mx.float32)))
