"""The torch backend, and end-to-end parity: mlx backend vs torch backend vs transformers on the HF source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core.backends import Embedder, open_embedder
from app.core.errors import BackendError
from converters.convert import convert
from tests.builders.clip import make_clip_checkpoint
from tests.builders.jobs import run_to_end
from tests.builders.siglip import make_siglip_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["a photo of a cat", "two dogs running on the beach at sunset", "", "red " * 100]


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    sizes = [(48, 64), (91, 37), (40, 40)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB") for w, h in sizes]


def transformers_reference(src: Path, model_type: str, images, texts) -> tuple[np.ndarray, np.ndarray, float]:
    """transformers' own pipeline on the HF folder: Pillow image processor, tokenizer, model (float32)."""
    import torch
    import transformers

    if model_type == "clip":
        proc = transformers.CLIPImageProcessorPil.from_pretrained(src)
        model = transformers.CLIPModel.from_pretrained(src, dtype=torch.float32).eval()
        enc = transformers.AutoTokenizer.from_pretrained(src)(
            texts, padding=True, truncation=True, return_tensors="pt"
        )
        text_kw = dict(enc)
    else:
        proc = transformers.SiglipImageProcessorPil.from_pretrained(src)
        model = transformers.SiglipModel.from_pretrained(src, dtype=torch.float32).eval()
        tok = transformers.AutoTokenizer.from_pretrained(src)
        enc = tok(texts, padding="max_length", truncation=True, max_length=64, return_tensors="pt")
        text_kw = {"input_ids": enc["input_ids"]}  # SigLIP convention: no attention mask
    with torch.inference_mode():
        img = model.get_image_features(pixel_values=proc(images=images, return_tensors="pt")["pixel_values"])
        txt = model.get_text_features(**text_kw)
    img, txt = img.pooler_output.numpy(), txt.pooler_output.numpy()
    norm = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    return norm(img), norm(txt), float(model.logit_scale.detach().exp())


@pytest.fixture(scope="module", params=["clip", "siglip"])
def converted(request, tmp_path_factory) -> tuple[str, Path, Path]:
    tmp = tmp_path_factory.mktemp(request.param)
    make = make_clip_checkpoint if request.param == "clip" else make_siglip_checkpoint
    src = make(tmp / "hf")
    return request.param, src, convert(src, tmp / "mlx").dst


def test_mlx_and_torch_backends_match_transformers(converted):
    model_type, src, dst = converted
    images = _images()
    ref_img, ref_txt, ref_scale = transformers_reference(src, model_type, images, TEXTS)
    embedders = {
        "mlx on the MLX folder": open_embedder(dst, "mlx"),
        "torch on the MLX folder": open_embedder(dst, "torch"),
        "torch on the HF folder": open_embedder(src, "torch"),
    }
    for name, emb in embedders.items():
        assert isinstance(emb, Embedder) and emb.model_type == model_type
        img, txt = emb.embed_images(images), emb.embed_texts(TEXTS)
        assert img.dtype == np.float32 and img.shape == ref_img.shape, name
        assert np.abs(img - ref_img).max() <= 1e-4, name
        assert np.abs(txt - ref_txt).max() <= 1e-4, name
        assert emb.logit_scale == pytest.approx(ref_scale, rel=1e-5), name
        assert (emb.logit_bias is not None) == (model_type == "siglip"), name
    mlx, torch_mlx = embedders["mlx on the MLX folder"], embedders["torch on the MLX folder"]
    # One folder, one embedding space, whichever backend reads it.
    assert mlx.model_id == torch_mlx.model_id and mlx.dim == torch_mlx.dim == ref_img.shape[1]
    if model_type == "siglip":
        assert mlx.logit_bias == pytest.approx(torch_mlx.logit_bias, abs=1e-6)
    pix_mlx, pix_torch = mlx.preprocess(images[0]), torch_mlx.preprocess(images[0])
    assert pix_torch.dtype == np.float32 and pix_torch.shape == pix_mlx.shape
    assert np.abs(pix_mlx - pix_torch).max() <= 1e-5
    assert torch_mlx.embed_images([]).shape == (0, torch_mlx.dim) == torch_mlx.embed_texts([]).shape


def test_torch_backend_refuses_a_quantized_folder(tmp_path):
    q = convert(
        make_clip_checkpoint(tmp_path / "hf", hidden_size=64, intermediate_size=128),
        tmp_path / "q",
        quantize=8,
    )
    with pytest.raises(BackendError, match="8-bit MLX-quantized weights, which only the mlx backend runs"):
        open_embedder(q.dst, "torch")


def test_torch_backend_refuses_weights_that_do_not_match_the_config(tmp_path):
    import json

    src = make_clip_checkpoint(tmp_path / "hf")
    cfg = json.loads((src / "config.json").read_text())
    cfg["projection_dim"] = 24
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        BackendError, match=r"weight \w+_projection\.weight has shape \(16, 32\), expected \(24, 32\)"
    ):
        open_embedder(src, "torch")


def test_importing_the_torch_backend_does_not_import_torch():
    code = "import sys, app.core.backends.torch_backend; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.fixture(scope="module")
def siglip_384(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny SigLIP with a 384-px input, as an HF folder and its MLX conversion."""
    tmp = tmp_path_factory.mktemp("siglip384")
    src = make_siglip_checkpoint(tmp / "hf", image_size=384, patch_size=48)
    return src, convert(src, tmp / "mlx").dst


@pytest.mark.parametrize("backend", ["mlx", "torch"])
def test_a_384px_siglip_drafts_jpegs_at_768_on_both_backends(siglip_384, tmp_path, monkeypatch, backend):
    """Both backends declare the input side; the indexer decodes JPEGs to at least twice it (768, not 448)."""
    from app.core import indexer
    from app.core.store import Store

    folder = siglip_384[0] if backend == "torch" else siglip_384[1]
    emb = open_embedder(folder, backend)
    assert emb.image_size == 384 and indexer.model_input_side(emb) == 384
    # Decoding happens in worker processes: the job they are given carries the decode side.
    assert indexer.decode_job(emb).min_side == 768
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (1600, 1200), (200, 30, 30)).save(tmp_path / "photos" / "a.jpg")
    with Store(tmp_path / "lib.sqlite") as store:
        summary = run_to_end(indexer.index(store, emb, [tmp_path / "photos"]))
    assert summary.embedded == 1 and summary.errors == 0


def test_decode_workers_get_a_processor_equal_to_the_backends_own(converted):
    """Both backends ship a settings-only image processor to the decode workers (torch: our port of
    transformers' one), also through the Library's serialising wrapper: the model input the workers
    return equals the backend's own preprocessing within the port's pixel tolerance."""
    import pickle

    from app.core import indexer
    from app.core.backends.serialized import SerializedEmbedder

    _, src, dst = converted
    for folder, backend in ((src, "torch"), (dst, "torch"), (dst, "mlx")):
        emb = open_embedder(folder, backend)
        job = indexer.decode_job(SerializedEmbedder(emb))
        assert job.preprocess is not None and len(pickle.dumps(job)) < 65536, (folder, backend)
        shipped = pickle.loads(pickle.dumps(job.preprocess))
        for im in _images():
            np.testing.assert_allclose(shipped(im), emb.preprocess(im), atol=1e-5, rtol=0)
