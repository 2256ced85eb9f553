"""`--backend auto` decides without importing torch: driver markers first, then a cached probe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.core import backends
from app.core.backends import nvidia_driver_present, resolve_backend, torch_cuda_available

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_driver_markers_are_files_that_exist(tmp_path):
    (tmp_path / "nvidiactl").write_text("")
    assert nvidia_driver_present([str(tmp_path / "missing"), str(tmp_path / "nvidiactl")])
    assert not nvidia_driver_present([str(tmp_path / "missing")])


def test_no_driver_means_mlx_and_torch_is_never_imported():
    code = (
        "import sys; from app.core import backends as b; b.nvidia_driver_present = lambda *a: False; "
        "print(b.resolve_backend('auto'), 'torch' in sys.modules)"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["mlx", "False"]


def test_a_cached_probe_answers_without_importing_torch(tmp_path):
    if backends._torch_install() is None:
        pytest.skip("torch is not installed")
    cache = tmp_path / "probe.json"
    key = f"{backends._torch_install()}|{sys.executable}"
    cache.write_text(json.dumps({"key": key, "cuda": True}))
    code = (
        "import sys; from pathlib import Path; from app.core import backends as b; "
        "b.nvidia_driver_present = lambda *a: True; "
        f"print(b.torch_cuda_available(Path({str(cache)!r})), 'torch' in sys.modules)"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]  # the cached answer, torch untouched


def test_a_missing_or_foreign_probe_is_redone_and_cached(tmp_path, monkeypatch):
    if backends._torch_install() is None:
        pytest.skip("torch is not installed")
    import torch

    monkeypatch.setattr(backends, "nvidia_driver_present", lambda *a: True)
    cache = tmp_path / "probe.json"
    cache.write_text(json.dumps({"key": "another torch", "cuda": not torch.cuda.is_available()}))
    assert torch_cuda_available(cache) == torch.cuda.is_available()
    saved = json.loads(cache.read_text())
    assert saved["cuda"] == torch.cuda.is_available() and saved["key"].startswith(backends._torch_install())
    cache.write_text("{not json")  # corrupt: probed again, never trusted
    assert torch_cuda_available(cache) == torch.cuda.is_available()


def test_explicit_backends_pass_and_unknown_ones_are_refused():
    assert resolve_backend("mlx") == "mlx" and resolve_backend("torch") == "torch"
    with pytest.raises(backends.BackendError, match="unknown backend 'cuda'"):
        resolve_backend("cuda")
