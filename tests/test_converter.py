"""The converter: HF folder -> MLX folder, verified against transformers, refusing what it cannot ship."""

from __future__ import annotations  # noqa: I001  (mlx is imported after mlx_models, on purpose)

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlx_models
from converters.convert import ConvertError, convert
from converters.verify import verify
from mlx_models.common.errors import ModelError
from tests.builders.clip import make_clip_checkpoint
from tests.builders.siglip import make_siglip_checkpoint

import mlx.core as mx  # after mlx_models, which prepares the runtime
import mlx.nn as nn

ROOT = Path(__file__).resolve().parents[1]
# Widths of 64 so every linear layer can be quantized in groups of 64.
WIDE = {"hidden_size": 64, "intermediate_size": 128}


@pytest.fixture(scope="module")
def clip_src(tmp_path_factory) -> Path:
    return make_clip_checkpoint(tmp_path_factory.mktemp("hf") / "clip", projection_dim=64, **WIDE)


@pytest.fixture(scope="module")
def siglip_src(tmp_path_factory) -> Path:
    return make_siglip_checkpoint(tmp_path_factory.mktemp("hf") / "siglip", **WIDE)


@pytest.fixture(scope="module")
def clip_src_4bit(tmp_path_factory) -> Path:
    """A CLIP whose residual branches are small next to the stream they add to, as in trained models.

    With plain random weights each branch is as large as the stream, so 4-bit noise compounds
    (measured min text cosine 0.969 at 2 layers, 0.988 at 1); with one layer and the branch
    outputs (out_proj, fc2) scaled by 1/4 it is 0.996, a fair stand-in for a trained checkpoint.
    """
    src = make_clip_checkpoint(
        tmp_path_factory.mktemp("hf") / "clip4", projection_dim=64, num_hidden_layers=1, **WIDE
    )
    _edit_weights(
        src,
        lambda w: w.update(
            {k: v * 0.25 for k, v in w.items() if k.endswith(("out_proj.weight", "fc2.weight"))}
        ),
    )
    return src


@pytest.fixture(scope="module")
def clip_fp32(clip_src, tmp_path_factory) -> Path:
    return convert(clip_src, tmp_path_factory.mktemp("mlx") / "clip-fp32").dst


def _tensors(folder: Path) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in mx.load(str(folder / "model.safetensors")).items()}


def _copy_without_weights(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "*.safetensors.index.json"))
    return dst


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_float32_conversion_verifies_against_transformers(family, clip_src, siglip_src, tmp_path):
    src = clip_src if family == "clip" else siglip_src
    res = convert(src, tmp_path / "out", verify=True)
    assert res.report is not None and res.report.passed, res.report
    assert res.report.metric == "max_abs" and res.report.value <= 1e-4
    assert res.report.tokens_equal and res.report.pixel_max_abs <= 1e-5
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["model_type"] == family and "quantization" not in cfg
    assert cfg["fovea"]["dtype"] == "float32" and cfg["fovea"]["source"] == str(src.resolve())
    # Layouts change (convs), names do not: every HF tensor is there under its own name.
    from safetensors import safe_open

    with safe_open(str(src / "model.safetensors"), "np") as fh:
        assert set(fh.keys()) == set(_tensors(tmp_path / "out"))


@pytest.mark.parametrize(
    "family, dtype, bits",
    [("clip", "float32", 8), ("clip4", "float32", 4), ("siglip", "float32", 8), ("siglip", "bfloat16", None)],
)
def test_reduced_precision_conversions_verify_by_cosine(family, dtype, bits, request, tmp_path):
    src = request.getfixturevalue({"clip4": "clip_src_4bit"}.get(family, f"{family}_src"))
    res = convert(src, tmp_path / "out", dtype=dtype, quantize=bits, verify=True)
    assert res.report.passed, res.report.reason
    assert res.report.metric == "min_cosine"
    assert res.report.threshold == (0.99 if bits == 4 else 0.999)
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    if bits:
        assert cfg["quantization"] == {"bits": bits, "group_size": {8: 64, 4: 32}[bits]} == res.quantization
        # The loader rebuilds the quantized layers from the recorded config.
        model = mlx_models.load(tmp_path / "out").model
        kinds = {type(m) for _, m in model.named_modules()}
        assert nn.QuantizedLinear in kinds
        q = next(m for _, m in model.named_modules() if isinstance(m, nn.QuantizedLinear))
        assert q.bits == bits
    else:
        assert {v.dtype for v in mx.load(str(tmp_path / "out" / "model.safetensors")).values()} == {
            mx.bfloat16
        }


def test_verify_fails_on_a_perturbed_weight(clip_src, clip_fp32, tmp_path):
    broken = shutil.copytree(clip_fp32, tmp_path / "broken")
    w = mx.load(str(broken / "model.safetensors"))
    w["visual_projection.weight"] = w["visual_projection.weight"] + 0.01 * (np.arange(64) % 3 == 0)
    mx.save_safetensors(str(broken / "model.safetensors"), w, metadata={"format": "mlx"})
    report = verify(clip_src, broken)
    assert not report.passed
    assert report.reason.startswith("images: max_abs") and report.image_value > 1e-4
    assert report.text_value <= 1e-4  # the text tower was untouched and still matches
    assert verify(clip_src, clip_fp32).passed


def test_failed_verification_ships_nothing(clip_src, tmp_path, monkeypatch):
    import converters.convert as conv
    from converters.verify import VerifyReport

    bad = VerifyReport(
        "clip", "max_abs", 1e-4, 0.5, 0.0, 0.0, True, False, "images: max_abs 0.5 misses the threshold 0.0001"
    )
    monkeypatch.setattr(conv, "verify_folder", lambda src, dst: bad)
    with pytest.raises(ConvertError, match="verification failed.*images: max_abs 0.5"):
        convert(clip_src, tmp_path / "out", verify=True)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_never_overwritten(clip_src, tmp_path):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    with pytest.raises(ConvertError, match="refusing to overwrite"):
        convert(clip_src, dst)
    assert [p.name for p in dst.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert convert(clip_src, empty).dst == empty and (empty / "model.safetensors").exists()


def test_pickle_weights_need_the_flag_and_load_weights_only(clip_src, clip_fp32, tmp_path):
    import torch
    from safetensors.torch import load_file

    src = _copy_without_weights(clip_src, tmp_path / "pickled")
    torch.save(load_file(str(clip_src / "model.safetensors")), src / "pytorch_model.bin")
    with pytest.raises(ConvertError, match="--allow-pickle"):
        convert(src, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    out = convert(src, tmp_path / "out", allow_pickle=True).dst
    ref = _tensors(clip_fp32)
    got = _tensors(out)
    assert set(got) == set(ref) and all(np.array_equal(got[k], ref[k]) for k in ref)


def test_sharded_safetensors_convert_like_a_single_file(clip_src, clip_fp32, tmp_path):
    from transformers import CLIPModel

    src = _copy_without_weights(clip_src, tmp_path / "sharded")
    CLIPModel.from_pretrained(clip_src).save_pretrained(src, max_shard_size="100KB")
    assert (src / "model.safetensors.index.json").exists() and len(list(src.glob("*.safetensors"))) > 2
    got, ref = _tensors(convert(src, tmp_path / "out").dst), _tensors(clip_fp32)
    assert set(got) == set(ref) and all(np.array_equal(got[k], ref[k]) for k in ref)


def _edit_config(folder: Path, edit) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


def _edit_weights(folder: Path, edit) -> None:
    w = mx.load(str(folder / "model.safetensors"))
    edit(w)
    mx.save_safetensors(str(folder / "model.safetensors"), w)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown_type", r"model_type 'bert' cannot be converted \(supported: clip, siglip, llava\)"),
        ("absurd_width", r"hidden_size=1000000000 is outside the allowed range"),
        ("missing_weight", r"1 weights missing, e\.g\. text_projection\.weight"),
        ("misshaped_weight", r"weight visual_projection\.weight has shape \(64, 63\)"),
    ],
)
def test_bad_checkpoints_are_refused_with_one_line_and_nothing_written(case, expected, clip_src, tmp_path):
    src = shutil.copytree(clip_src, tmp_path / "src")
    if case == "unknown_type":
        _edit_config(src, lambda c: c.update(model_type="bert"))
    elif case == "absurd_width":
        _edit_config(src, lambda c: c["vision_config"].update(hidden_size=10**9))
    elif case == "missing_weight":
        _edit_weights(src, lambda w: w.pop("text_projection.weight"))
    else:
        _edit_weights(
            src, lambda w: w.update({"visual_projection.weight": w["visual_projection.weight"][:, :63]})
        )
    with pytest.raises(ModelError, match=expected) as err:
        convert(src, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output, no leftover temp folder


def test_command_line_exit_codes(clip_src, clip_fp32, tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "converters.convert", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )

    refused = run(clip_src, clip_fp32)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: {clip_fp32}: already exists and is not empty; refusing to overwrite"
    ]
    assert run(clip_src, tmp_path / "x", "--quantize", "3").returncode == 2
    ok = run(clip_src, tmp_path / "q8", "--quantize", "8")
    assert ok.returncode == 0, ok.stderr
    assert (
        "8-bit" in ok.stdout
        and json.loads((tmp_path / "q8" / "config.json").read_text())["quantization"]["bits"] == 8
    )
