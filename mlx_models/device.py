"""The MLX device as the app sees it: a real probe, GPU failures named as such, and the buffer cache.

Only MLX's top-level API is used (`mx.set_cache_limit`, `mx.clear_cache`); `mx.metal.*` is deprecated.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import mlx.core as mx

from .runtime import device_name  # prepares BLAS before mlx is imported

# Metal keeps freed buffers for reuse up to the memory limit (most of the RAM) by default, so a window
# left open after a 1.6 GB caption model held that memory for good. 1 GiB still covers the transient
# buffers one embedding or caption step re-allocates with the same shapes (a ViT-L/14 batch of 32 in
# float16 needs a few hundred MB), so steady-state jobs keep reusing them.
CACHE_LIMIT_BYTES = 1 << 30

# Substrings of MLX's own messages when the Metal device or its kernel library cannot be used.
# (mlx/backend/metal/device.cpp: "Failed to load the default metallib. ...", "[metal::Device] ...").
_GPU_FAILURE_MARKERS = ("failed to load the default metallib", "[metal::", "unable to load kernel")


@dataclass(frozen=True)
class DeviceProbe:
    """What one small computation on MLX's default device gave: `ok` False carries MLX's reason."""

    device: str  # "gpu" (Metal) or "cpu"
    ok: bool
    reason: str = ""


def probe_device() -> DeviceProbe:
    """Run one tiny kernel on the default device: on Metal this loads mlx.metallib, the first thing to fail."""
    name = device_name()
    try:
        value = mx.sum(mx.arange(4, dtype=mx.float32)).item()
    except Exception as e:  # MLX raises RuntimeError (ImportError on some versions) for Metal set-up failures
        return DeviceProbe(name, False, one_line(e))
    if value != 6.0:
        return DeviceProbe(name, False, f"sum(0..3) gave {value}, expected 6")
    return DeviceProbe(name, True)


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def gpu_failure(e: BaseException) -> str | None:
    """A one-line "cannot run on the GPU" reason when `e` is MLX failing to use Metal, else None.

    MLX reports a missing or too-new mlx.metallib from whatever call first touched the GPU (often
    `mx.load`), which must not reach the user as a broken weights file.
    """
    text = one_line(e)
    if not any(m in text.lower() for m in _GPU_FAILURE_MARKERS):
        return None
    hint = (
        " (mlx.metallib missing beside libmlx)" if "metallib" in text.lower() and "not found" in text else ""
    )
    return f"MLX cannot run on the {device_name()}{hint}: {text}"


def configure_memory(platform: str = sys.platform) -> int | None:
    """Cap MLX's buffer cache on macOS (see CACHE_LIMIT_BYTES); returns the cap set, None elsewhere."""
    if platform != "darwin":
        return None  # the CPU backend frees to the system allocator; nothing to cap
    mx.set_cache_limit(CACHE_LIMIT_BYTES)
    return CACHE_LIMIT_BYTES


def release_cache() -> None:
    """Give cached buffers back after a model switch or at the end of a job."""
    mx.clear_cache()
