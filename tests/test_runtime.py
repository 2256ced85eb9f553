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


LINUX_OPENBLAS = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not HAS_OPENBLAS, reason="needs Linux with libopenblas"
)


def _without(*names: str) -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in names}


def _run_clean(code: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return out.stdout.strip()


@LINUX_OPENBLAS
def test_openblas_threads_sleep_soon_unless_the_user_says_otherwise() -> None:
    code = "import os, mlx_models.runtime as r; print(r.BLAS.openblas, os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    env = _without("OPENBLAS_THREAD_TIMEOUT")
    assert _run_clean(code, env) == "libopenblas.so.0 20"
    assert _run_clean(code, {**env, "OPENBLAS_THREAD_TIMEOUT": "28"}) == "libopenblas.so.0 28"


# CPU this process burns while it sleeps right after a multi-threaded matmul: the spin of OpenBLAS's threads.
_SPIN = (
    "import time, mlx_models, mlx.core as mx\n"
    "a = mx.random.normal((1024, 1024)); mx.eval(a @ a); mx.eval(a @ a)\n"
    "t = time.process_time(); time.sleep(0.3); print(time.process_time() - t)"
)


@LINUX_OPENBLAS
def test_openblas_reads_the_timeout_idle_threads_stop_spinning() -> None:
    """The setting must be in place before OpenBLAS loads: measured, not just set."""
    env = _without("OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    ours = float(_run_clean(_SPIN, env))
    stock = float(_run_clean(_SPIN, {**env, "OPENBLAS_THREAD_TIMEOUT": "28"}))  # OpenBLAS's default
    if stock < 0.03:  # one core, or no core free for the spinning thread: nothing to compare
        pytest.skip(f"OpenBLAS's default spin not seen here ({stock * 1000:.0f} ms of CPU while asleep)")
    assert ours < stock / 3, (ours, stock)


def test_torch_is_imported_with_sleeping_openmp_threads_unless_the_user_says_otherwise() -> None:
    pytest.importorskip("torch")
    code = (
        "import os, sys\n"
        "from app.core.backends import import_torch\n"
        "assert 'torch' not in sys.modules\n"
        "import_torch(); print(os.environ['OMP_WAIT_POLICY'])"
    )
    env = _without("OMP_WAIT_POLICY")
    assert _run_clean(code, env) == "PASSIVE"
    assert _run_clean(code, {**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
