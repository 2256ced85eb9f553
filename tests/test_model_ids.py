"""Model ids: one id per embedding space, so a library re-embeds exactly when the model's outputs can change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from app.core.backends.ids import model_id_for


def _folder(path: Path, weights: dict[str, np.ndarray], fovea: dict | None = None) -> Path:
    path.mkdir()
    cfg = {"model_type": "clip", "projection_dim": 4, **({"fovea": fovea} if fovea else {})}
    (path / "config.json").write_text(json.dumps(cfg))
    save_file(weights, str(path / "model.safetensors"))
    return path


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a.weight": rng.normal(size=(64, 32)).astype(np.float32), "b.bias": np.zeros(8, np.float32)}


def test_retrained_weights_of_the_same_shapes_get_another_id(tmp_path):
    a = _folder(tmp_path / "m1", _weights(0))
    b = _folder(tmp_path / "m2", _weights(1))

    def header(folder: Path) -> bytes:
        raw = (folder / "model.safetensors").read_bytes()
        return raw[: 8 + int.from_bytes(raw[:8], "little")]

    assert header(a) == header(b)  # same names, dtypes, shapes and offsets: only the values differ
    assert model_id_for(a).split("-")[1] != model_id_for(b).split("-")[1]  # the hash, not the folder name


def test_a_change_to_one_tensor_beyond_the_first_changes_the_id(tmp_path):
    w = _weights(0)
    a = _folder(tmp_path / "a", w)
    b = _folder(tmp_path / "b", {**w, "b.bias": np.ones(8, np.float32)})
    assert model_id_for(a).split("-")[1] != model_id_for(b).split("-")[1]


def test_the_fovea_notes_and_a_copy_keep_the_id(tmp_path):
    a = _folder(tmp_path / "m", _weights(0))
    first = model_id_for(a)
    assert model_id_for(a) == first and first.startswith("m-")
    copy = tmp_path / "copy" / "m"
    shutil.copytree(a, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["fovea"] = {"weak_cosine": {"text": 0.5}}
    (copy / "config.json").write_text(json.dumps(cfg))
    assert model_id_for(copy) == first
