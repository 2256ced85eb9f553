"""The MLX runtime is prepared in one place: OpenBLAS is preloaded on Linux before mlx loads."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

HAS_OPENBLAS = ctypes.util.find_library("openblas") is not None


def _run(code: str, **env: str) -> str:
    import os

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    return out.stdout.strip()


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not HAS_OPENBLAS, reason="needs Linux with libopenblas"
)
def test_importing_the_mlx_backend_preloads_openblas_into_the_process() -> None:
    code = (
        "import app.core.backends.mlx_backend, mlx_models.runtime as r\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(r.BLAS.openblas, 'libopenblas' in maps)"
    )
    assert _run(code) == "libopenblas.so.0 True"


def test_the_preload_can_be_switched_off_for_benchmarks() -> None:
    out = _run(
        "import mlx_models.runtime as r; print(r.BLAS.openblas, '|', r.BLAS.reason)", FOVEA_NO_OPENBLAS="1"
    )
    assert out.startswith("None |")
