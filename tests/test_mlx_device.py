"""The MLX device as the app sees it, and mlx-lm's pieces without its transformers-importing __init__."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlx_models  # noqa: F401  (prepares the MLX runtime)
from mlx_models.common.errors import DeviceError, WeightsError
from mlx_models.device import CACHE_LIMIT_BYTES, configure_memory, gpu_failure, probe_device

import mlx.core as mx
import pytest

ROOT = Path(__file__).resolve().parents[1]
METALLIB_MISSING = "Failed to load the default metallib. library not found library not found"


def _python(code: str) -> list[str]:
    """Run `code` in a fresh interpreter (a clean sys.modules); its stdout lines."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.splitlines()


def test_llava_pieces_of_mlx_lm_import_where_transformers_cannot() -> None:
    """What the bundle sees: transformers is absent; the captioner's mlx-lm modules still import."""
    code = (
        "import sys; sys.modules['transformers'] = None\n"  # `import transformers` now raises ImportError
        "import mlx_models\n"
        "from mlx_models.lm_import import lm_module\n"
        "for m in ('models.qwen2', 'models.llama', 'models.qwen3', 'models.cache', 'sample_utils'):\n"
        "    lm_module(m)\n"
        "print(sorted(k for k in sys.modules if k.startswith('mlx_lm.') and not k.startswith('mlx_lm.models')))\n"
        "try:\n"
        "    import mlx_lm; mlx_lm.load\n"
        "except ImportError as e:\n"
        "    print('whole package:', e.name)\n"
    )
    # Only sample_utils besides the models ran; asking for the whole package reaches transformers.
    assert _python(code) == ["['mlx_lm.sample_utils']", "whole package: transformers"]


def test_the_placeholder_package_still_gives_the_whole_mlx_lm_where_transformers_is_installed() -> None:
    pytest.importorskip("transformers")
    code = (
        "import mlx_models\n"
        "from mlx_models.lm_import import lm_module\n"
        "lm_module('models.cache')\n"
        "import mlx_lm\n"
        "print(callable(mlx_lm.load), mlx_lm.models.cache.make_prompt_cache.__module__)\n"
    )
    assert _python(code) == ["True mlx_lm.models.cache"]


def test_the_default_device_really_computes_here() -> None:
    probe = probe_device()
    assert probe.ok and probe.reason == "" and probe.device in ("cpu", "gpu")


def test_a_gpu_without_its_kernel_library_is_named_as_a_device_failure_not_a_weights_file(
    tmp_path, monkeypatch
) -> None:
    from mlx_models.common import weights

    assert gpu_failure(ValueError("header too large")) is None
    msg = gpu_failure(RuntimeError(METALLIB_MISSING))
    assert msg.startswith("MLX cannot run on the ") and "mlx.metallib missing beside libmlx" in msg
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)

    def no_metal(path: str) -> dict:
        raise RuntimeError(METALLIB_MISSING)

    monkeypatch.setattr(weights.mx, "load", no_metal)
    with pytest.raises(DeviceError) as e:
        weights.load_safetensors(tmp_path)
    assert "not a readable safetensors" not in str(e.value) and "metallib" in str(e.value)
    assert "\n" not in str(e.value) and str(tmp_path / "model.safetensors") in str(e.value)
    monkeypatch.undo()
    with pytest.raises(WeightsError, match="not a readable safetensors file"):  # a truly broken file still is
        weights.load_safetensors(tmp_path)


def test_buffer_cache_is_capped_on_macos_only() -> None:
    assert configure_memory("linux") is None
    before = mx.set_cache_limit(CACHE_LIMIT_BYTES + 1)  # a marker, to see whether the next call sets it
    try:
        assert (
            configure_memory("linux") is None
            and mx.set_cache_limit(CACHE_LIMIT_BYTES + 1) == CACHE_LIMIT_BYTES + 1
        )
        assert configure_memory("darwin") == CACHE_LIMIT_BYTES
        assert mx.set_cache_limit(CACHE_LIMIT_BYTES + 1) == CACHE_LIMIT_BYTES
    finally:
        mx.set_cache_limit(before)


def test_the_cli_says_in_one_line_that_the_gpu_cannot_load_the_model(tmp_path, monkeypatch, capsys) -> None:
    from mlx_models.common import weights

    from app.cli import main

    def no_metal(path: str) -> dict:
        raise RuntimeError(METALLIB_MISSING)

    monkeypatch.setattr(weights.mx, "load", no_metal)
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    code = main(["--backend", "mlx", "embed", "--text", "a cat", "--out", str(tmp_path / "e.npy")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "MLX cannot run on the " in err and "mlx.metallib missing beside libmlx" in err
    assert "model.safetensors" in err and "not a readable safetensors" not in err
