"""The one place that decides how MLX runs: BLAS on Linux and the default device.

The Linux `mlx[cpu]` wheel links a slow reference BLAS; loading the system OpenBLAS into the
global symbol scope *before* mlx is first imported makes its CPU kernels resolve to OpenBLAS
(measured here: 1024x1024 fp32 matmul 457 ms -> 17 ms). On macOS MLX uses Metal and this is a no-op.
OpenBLAS's idle threads are told to sleep after ~0.3 ms instead of spinning for ~0.1 s (see
`THREAD_TIMEOUT`). The preload also serves torch's GEMMs in the same process (libtorch_cpu's `sgemm_` is
interposable), which is why the torch backend's OpenMP threads must not spin either (app.core.backends).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass

_OPENBLAS_NAMES = ("libopenblas.so.0", "libopenblas.so")
# An idle OpenBLAS thread spins 2**28 cycles (~0.1 s) before it sleeps: through every single-threaded op of
# the model, a quarter of its CPU (bench/ingest.py: model-only CPU/wall 1.99 -> 1.52 at the same speed),
# taken from the decode workers and whatever else runs. 2**20 cycles (~0.3 ms) still spins through short gaps.
THREAD_TIMEOUT = "20"


@dataclass(frozen=True)
class BlasStatus:
    """What happened when the runtime was prepared; `fovea status` reports it."""

    platform: str
    openblas: str | None  # library name that was loaded, or None
    reason: str


def _load_openblas() -> BlasStatus:
    if not sys.platform.startswith("linux"):
        return BlasStatus(sys.platform, None, "not Linux: MLX uses its own kernels (Metal on macOS)")
    if "mlx.core" in sys.modules:
        return BlasStatus(sys.platform, None, "mlx was imported before the runtime was prepared")
    if os.environ.get("FOVEA_NO_OPENBLAS"):  # lets benchmarks measure the bundled BLAS for comparison
        return BlasStatus(sys.platform, None, "disabled by FOVEA_NO_OPENBLAS")
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT)  # read once, when OpenBLAS loads
    for name in _OPENBLAS_NAMES:
        try:
            ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        return BlasStatus(sys.platform, name, "system OpenBLAS loaded before mlx")
    # Silent fallback: MLX still works, only slower.
    return BlasStatus(
        sys.platform,
        None,
        "libopenblas not found (apt install libopenblas0-pthread); using mlx's bundled BLAS",
    )


BLAS: BlasStatus = _load_openblas()

import mlx.core as mx  # noqa: E402  (must come after the BLAS preload above)


def device_name() -> str:
    """The device MLX computes on: 'gpu' (Metal) on Apple silicon, else 'cpu'."""
    return "gpu" if mx.default_device() == mx.gpu else "cpu"
