"""`fovea embed` end to end: HF checkpoint -> `fovea models convert` -> `fovea embed`, against transformers.

The configs here appear in no other test (sizes, activations, context lengths), so this is the
"model configs you have not tried" check of the foundation issue, through the user's own commands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from tests.builders.clip import make_clip_checkpoint
from tests.builders.siglip import make_siglip_checkpoint

TEXTS = ["a dog asleep on a red sofa", "Receipt from the HARDWARE store!", "x"]


def _photos(folder: Path) -> list[Path]:
    rng = np.random.default_rng(5)
    paths = []
    for i, (h, w) in enumerate([(90, 120), (200, 64), (37, 37)]):
        p = folder / f"photo {i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def _transformers_embeddings(src: Path, family: str, photos: list[Path]) -> np.ndarray:
    import torch
    import transformers

    if family == "clip":
        proc = transformers.CLIPImageProcessorPil.from_pretrained(src)
        model = transformers.CLIPModel.from_pretrained(src, dtype=torch.float32)
        enc = transformers.AutoTokenizer.from_pretrained(src)(
            TEXTS, padding=True, truncation=True, return_tensors="pt"
        )
        kw = {"attention_mask": enc["attention_mask"]}
    else:
        proc = transformers.SiglipImageProcessorPil.from_pretrained(src)
        model = transformers.SiglipModel.from_pretrained(src, dtype=torch.float32)
        max_len = model.config.text_config.max_position_embeddings
        enc = transformers.AutoTokenizer.from_pretrained(src)(
            TEXTS, padding="max_length", truncation=True, max_length=max_len, return_tensors="pt"
        )
        kw = {}  # SigLIP's convention: fixed-length padding and no attention mask
    pixels = proc(images=[Image.open(p).convert("RGB") for p in photos], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        img = model.get_image_features(pixel_values=pixels).pooler_output
        txt = model.get_text_features(input_ids=enc["input_ids"], **kw).pooler_output
    out = torch.cat([img, txt]).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "family, overrides",
    [
        (
            "clip",
            dict(
                hidden_act="gelu",
                image_size=56,
                patch_size=14,
                projection_dim=40,
                text_max_position_embeddings=20,
            ),
        ),
        (
            "siglip",
            dict(
                hidden_act="gelu_pytorch_tanh",
                image_size=36,
                patch_size=12,
                hidden_size=40,
                text_hidden_size=40,
            ),
        ),
    ],
)
def test_fovea_embed_matches_transformers_through_the_converter(family, overrides, tmp_path, monkeypatch):
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    make = make_clip_checkpoint if family == "clip" else make_siglip_checkpoint
    src = make(tmp_path / "hf", seed=11, **overrides)
    dst = tmp_path / "mlx"
    assert main(["models", "convert", str(src), str(dst)]) == 0  # verifies against transformers too
    photos = _photos(tmp_path)
    out = tmp_path / "e.npy"
    args = ["--model", str(dst), "--backend", "mlx", "embed", "--out", str(out)]
    for p in photos:
        args += ["--image", str(p)]
    for t in TEXTS:
        args += ["--text", t]
    assert main(args) == 0
    ours = np.load(out)
    assert ours.dtype == np.float32 and ours.shape[0] == len(photos) + len(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    ref = _transformers_embeddings(src, family, photos)
    assert np.abs(ours - ref).max() <= 1e-4


def test_embed_without_inputs_is_a_usage_error(capsys):
    assert main(["embed", "--out", "/tmp/never.npy"]) == 2
    assert "at least one --image or --text" in capsys.readouterr().err


def test_embed_of_a_broken_image_fails_with_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    src = make_clip_checkpoint(tmp_path / "hf", seed=3)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    assert (
        main(
            [
                "--model",
                str(src),
                "--backend",
                "mlx",
                "embed",
                "--image",
                str(bad),
                "--out",
                str(tmp_path / "o.npy"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.jpg" in err[0]
    assert not (tmp_path / "o.npy").exists()
