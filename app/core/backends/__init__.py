"""Embedding backends behind one small protocol, and the choice between them.

`mlx` runs our MLX port (Metal on macOS, CPU elsewhere); `torch` runs the original checkpoint
through transformers (CUDA when present, else CPU) and is the reference for testing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from app.core.errors import BackendError

BACKENDS = ("auto", "mlx", "torch")


@runtime_checkable
class Embedder(Protocol):
    """A dual encoder. Every embedding it returns is float32 and L2-normalised, one row per input."""

    model_id: str  # identifies the embedding space: a change of model re-embeds, never mixes spaces
    model_type: str  # "clip" (softmax over labels) or "siglip" (independent sigmoids)
    dim: int
    image_size: int  # the square input side; JPEGs are draft-decoded to at least twice this
    weak_cosine: Mapping[
        str, float
    ]  # measured weak-hit cosines per query kind ("text", "image"); {}: defaults
    logit_scale: float  # already exponentiated, as used on cosine similarities
    logit_bias: float | None  # SigLIP only
    folder: Path | None  # the model folder its notes are read from (None: an in-memory test embedder)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One RGB image -> the model's (H, W, 3) float32 input; thread-safe, for decode workers."""
        ...

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float32 from `preprocess` -> (N, dim) normalised."""
        ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB images -> (N, dim) normalised."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (N, dim) normalised."""
        ...


# torch's OpenMP threads spin after every parallel region. Where the OpenBLAS that mlx_models.runtime
# preloads serves torch's GEMMs (the app's case on Linux), they spun on the cores OpenBLAS's threads needed:
# the torch model ran at 12.6 img/s, 18.8 with sleeping threads (bench/ingest.py, 2 cores).
TORCH_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def import_torch() -> Any:
    """torch, with TORCH_ENV in place first (OpenMP reads it once, when torch loads; a user's value wins)."""
    for key, value in TORCH_ENV.items():
        os.environ.setdefault(key, value)
    import torch

    return torch


# A loaded NVIDIA kernel driver shows these (Linux); without one CUDA cannot work, whatever torch says.
NVIDIA_MARKERS = ("/proc/driver/nvidia/version", "/dev/nvidiactl")


def nvidia_driver_present(markers: Sequence[str] = NVIDIA_MARKERS) -> bool:
    """True when an NVIDIA driver is loaded (device files / procfs), found without importing anything."""
    return any(os.path.exists(m) for m in markers)


def _torch_install() -> str | None:
    """Where the installed torch lives and when it was written (no import), None when not installed.

    A reinstall changes the key, so a cached CUDA probe is redone. (Not importlib.metadata: PyInstaller
    would see a literal `version("torch")` and bundle torch's metadata.)
    """
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None
    try:
        return f"{spec.origin}@{os.stat(spec.origin).st_mtime_ns}"
    except OSError:
        return spec.origin


def _probe_cache() -> Path:
    from app.core.paths import user_data_dir

    return user_data_dir() / "cuda-probe.json"


def torch_cuda_available(cache: Path | None = None) -> bool:
    """True when torch is installed and sees a CUDA device.

    Decided without importing torch wherever possible: no torch installed or no NVIDIA driver loaded
    means False at once; otherwise the answer of an earlier probe for this torch install is reused
    (cached in the user data folder), and only a first probe imports torch (which `auto` then uses).
    """
    if not nvidia_driver_present():
        return False
    install = _torch_install()
    if install is None:
        return False
    cache = cache or _probe_cache()
    key = f"{install}|{sys.executable}"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return bool(cached["cuda"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass  # no probe yet, or an unreadable one: probe again
    torch = import_torch()
    found = bool(torch.cuda.is_available())
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "cuda": found}))
    except OSError:
        pass  # a read-only data folder only costs the probe next time
    return found


def resolve_backend(name: str) -> str:
    """`auto` picks torch where torch and CUDA are present and mlx everywhere else (macOS: always mlx)."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
    if name == "auto":
        return "torch" if sys.platform != "darwin" and torch_cuda_available() else "mlx"
    return name


def open_embedder(model_path: str | Path, backend: str = "auto") -> Embedder:
    """Create the embedder for a model folder on the chosen backend."""
    chosen = resolve_backend(backend)
    if chosen == "torch":
        from .torch_backend import TorchEmbedder

        return TorchEmbedder(Path(model_path))
    from .mlx_backend import MlxEmbedder

    return MlxEmbedder(Path(model_path))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, in float32 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)
