"""What `fovea status` reports about the machine: where MLX computes and where caches go."""

from __future__ import annotations

import os
from typing import Any


def runtime_info() -> dict[str, Any]:
    """Where and how MLX computes and where caches go; `fovea status` reports it, with or without a library."""
    import mlx_models.runtime as rt
    from mlx_models.device import probe_device

    from app.core.cache import cache_dir

    probe = probe_device()
    return {
        "mlx_device": probe.device,
        "mlx_device_ok": probe.ok,  # one kernel really ran there (on Metal: mlx.metallib loaded)
        "mlx_device_error": probe.reason,
        "openblas": rt.BLAS.openblas,
        "blas": rt.BLAS.reason,
        "cache_dir": str(cache_dir()),
        "hf_home": os.environ.get("HF_HOME"),  # in the packaged app: inside cache_dir
    }
