"""The MLX CLIP port against transformers' CLIPModel, CLIPTokenizer and CLIPImageProcessorPil.

Every comparison runs on random-weight checkpoints built offline (tests/builders/clip.py), and
every expected value comes from the reference run on the same checkpoint.
"""

from __future__ import annotations  # noqa: I001  (mlx.core is imported after mlx_models, on purpose)

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mlx_models
from mlx_models import clip
from mlx_models.common.errors import ConfigError, ModelError, WeightsError
from mlx_models.common.quant import quantize_model
from mlx_models.common.weights import load_safetensors
from tests.builders.clip import make_clip_checkpoint

import mlx.core as mx  # after mlx_models, which prepares the runtime

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

EMBED_TOL = 1e-4  # max-abs on L2-normalised fp32 embeddings
PIXEL_TOL = 1e-5

TEXTS = [
    "a photo of a cat",
    "  A DOG   on the BEACH\tat sunset!\n",
    "naïve café — ünïcødé 東京 🚀 Ωmega",
    "it's the dog's bone, isn't it? 42",
    "word " * 100,  # longer than any context: truncated, EOS kept last
    "",
]

# Three tiny configs that differ in activation, image/patch size, projection width, eps and EOS pooling.
TINY = {
    "quick_gelu": dict(hidden_act="quick_gelu", image_size=32, patch_size=8, projection_dim=16),
    "gelu_legacy_eos": dict(
        hidden_act="gelu",
        image_size=48,
        patch_size=16,
        projection_dim=24,
        text_eos_token_id=2,
        layer_norm_eps=1e-6,
    ),
    "tanh_short_ctx": dict(
        hidden_act="gelu_pytorch_tanh",
        image_size=43,  # not a multiple of the patch: the grid floors to 4 x 4, as in SigLIP so400m (384 / 14)
        patch_size=10,
        projection_dim=8,
        text_max_position_embeddings=24,
    ),
}


def images(seed: int = 0) -> list[Image.Image]:
    """Landscape, portrait, square grayscale, RGBA with transparency, palette, and tiny."""
    rng = np.random.default_rng(seed)
    out = [
        Image.fromarray(rng.integers(0, 256, (61, 97, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 256, (130, 50, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), mode="L"),
        Image.fromarray(rng.integers(0, 256, (45, 80, 4), dtype=np.uint8), mode="RGBA"),
        Image.fromarray(rng.integers(0, 256, (33, 71, 3), dtype=np.uint8)).convert("P"),
        Image.fromarray(rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)),
    ]
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clip_tiny")
    return {
        name: make_clip_checkpoint(root / name, seed=i, **kw) for i, (name, kw) in enumerate(TINY.items())
    }


def hf_model(path: Path):
    return transformers.CLIPModel.from_pretrained(str(path)).eval()


def hf_processor(path: Path):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil.from_pretrained(str(path))


def max_len(path: Path) -> int:
    return json.loads((path / "config.json").read_text())["text_config"]["max_position_embeddings"]


def hf_tokens(path: Path, texts: list[str]) -> dict[str, np.ndarray]:
    tok = transformers.CLIPTokenizer.from_pretrained(str(path))
    return tok(texts, padding=True, truncation=True, max_length=max_len(path), return_tensors="np")


def normalised(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def reference_embeddings(path: Path, imgs, texts) -> tuple[np.ndarray, np.ndarray]:
    """transformers end to end: its processor, tokenizer and model."""
    model = hf_model(path)
    pixels = hf_processor(path)(imgs, return_tensors="pt")["pixel_values"]
    tok = hf_tokens(path, texts)
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels).pooler_output
        txt = model.get_text_features(
            input_ids=torch.tensor(tok["input_ids"]), attention_mask=torch.tensor(tok["attention_mask"])
        ).pooler_output
    return normalised(img.numpy()), normalised(txt.numpy())


def mlx_embeddings(bundle, imgs, texts) -> tuple[np.ndarray, np.ndarray]:
    """Our port end to end: our processor, tokenizer and model."""
    pixels = mx.array(np.stack([bundle.preprocess(im) for im in imgs]))
    tb = bundle.tokenize(texts)
    img = bundle.model.get_image_features(pixels)
    txt = bundle.model.get_text_features(mx.array(tb.input_ids), mx.array(tb.attention_mask))
    return normalised(np.array(img.astype(mx.float32))), normalised(np.array(txt.astype(mx.float32)))


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_embeddings_match_transformers_end_to_end(tiny, name):
    path = tiny[name]
    bundle = mlx_models.load(path)  # an HF folder: load() sanitises on the way in
    ref_img, ref_txt = reference_embeddings(path, images(), TEXTS)
    img, txt = mlx_embeddings(bundle, images(), TEXTS)
    assert img.shape == ref_img.shape and txt.shape == ref_txt.shape
    assert np.abs(img - ref_img).max() <= EMBED_TOL
    assert np.abs(txt - ref_txt).max() <= EMBED_TOL


@pytest.mark.parametrize("name", ["quick_gelu", "gelu_legacy_eos"])
def test_eos_pooling_matches_transformers_when_max_id_is_not_eos(tmp_path, name):
    """Hand-made ids with a token above EOS: legacy configs (eos_token_id == 2) pool at the argmax id,
    current ones at the first EOS, even when padding repeats EOS."""
    path = make_clip_checkpoint(tmp_path / name, seed=7, text_vocab_size=900, **TINY[name])
    eos = json.loads((path / "vocab.json").read_text())["<|endoftext|>"]
    bos = eos - 1
    ids = np.array([[bos, 5, 899, 17, eos, eos, eos], [bos, 899, 40, eos, eos, eos, eos]], np.int32)
    mask = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0, 0]], np.int32)
    with torch.no_grad():
        ref = hf_model(path).get_text_features(
            input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask)
        )
    ours = mlx_models.load(path).model.get_text_features(mx.array(ids), mx.array(mask))
    assert np.abs(normalised(ours) - normalised(ref.pooler_output.numpy())).max() <= EMBED_TOL


def test_pixels_equal_hf_pil_processor(tiny):
    for path in tiny.values():
        ours = clip.ImageProcessor.from_folder(path)
        ref = hf_processor(path)(images(), return_tensors="np")["pixel_values"]  # (N, 3, H, W)
        got = np.stack([ours(im) for im in images()])
        assert got.dtype == np.float32
        assert np.abs(got - ref.transpose(0, 2, 3, 1)).max() <= PIXEL_TOL


def test_pixels_equal_hf_when_crop_exceeds_resize_and_size_is_fixed():
    """The zero-padding branch of center crop, and a fixed (height, width) resize."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    for kw in (
        dict(size={"shortest_edge": 30}, crop_size={"height": 36, "width": 35}),
        dict(size={"height": 40, "width": 28}, crop_size={"height": 24, "width": 24}),
    ):
        hf = CLIPImageProcessorPil(**kw)
        ours = clip.ImageProcessor.from_dict(hf.to_dict())
        ref = hf(images(1), return_tensors="np")["pixel_values"]
        got = np.stack([ours(im) for im in images(1)])
        assert np.abs(got - ref.transpose(0, 2, 3, 1)).max() <= PIXEL_TOL


def test_preprocess_is_thread_safe(tiny):
    proc = clip.ImageProcessor.from_folder(tiny["quick_gelu"])
    imgs = images() * 4
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(proc, imgs))
    for a, im in zip(parallel, imgs, strict=True):
        np.testing.assert_array_equal(a, proc(im))


@pytest.mark.parametrize("name", ["quick_gelu", "tanh_short_ctx"])
def test_token_ids_equal_hf_clip_tokenizer(tiny, name):
    path = tiny[name]
    ref = hf_tokens(path, TEXTS)
    got = clip.Tokenizer.from_folder(path)(TEXTS)
    assert got.input_ids.dtype == np.int32 and got.attention_mask.dtype == np.int32
    np.testing.assert_array_equal(got.input_ids, ref["input_ids"])
    np.testing.assert_array_equal(got.attention_mask, ref["attention_mask"])
    assert got.input_ids.shape[1] == max_len(path)  # the over-long text fills the context exactly


def test_tokenizer_built_from_vocab_and_merges_equals_hf(tiny, tmp_path):
    """Folders without tokenizer.json: Tokenizer.from_folder and prepare_tokenizer build one."""
    src = tiny["quick_gelu"]
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "config.json"):
        shutil.copy(src / name, bare / name)
    ref = hf_tokens(src, TEXTS)
    np.testing.assert_array_equal(clip.Tokenizer.from_folder(bare)(TEXTS).input_ids, ref["input_ids"])
    out = tmp_path / "prepared"
    clip.prepare_tokenizer(bare, out)
    shutil.copy(src / "config.json", out / "config.json")
    assert (out / "tokenizer.json").exists()
    np.testing.assert_array_equal(clip.Tokenizer.from_folder(out)(TEXTS).input_ids, ref["input_ids"])


def test_sanitize_is_idempotent_and_transposes_the_patch_conv(tiny):
    raw = load_safetensors(tiny["gelu_legacy_eos"])
    once = clip.sanitize(raw)
    twice = clip.sanitize(once)
    assert once.keys() == twice.keys()
    assert all(mx.array_equal(once[k], twice[k]).item() for k in once)
    assert not any(k.endswith("position_ids") for k in once)
    conv = once["vision_model.embeddings.patch_embedding.weight"]
    assert conv.shape == (32, 16, 16, 3)  # MLX [out, kh, kw, in]
    torch_layout = raw["vision_model.embeddings.patch_embedding.weight"]
    assert mx.array_equal(conv, torch_layout.transpose(0, 2, 3, 1)).item()


def test_misshaped_weight_is_refused_with_a_clear_message(tiny, tmp_path):
    src = tiny["quick_gelu"]
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    weights = load_safetensors(bad)
    weights["text_projection.weight"] = mx.zeros((3, 5))
    mx.save_safetensors(str(bad / "model.safetensors"), weights)
    with pytest.raises(WeightsError, match=r"text_projection\.weight has shape \(3, 5\).*\(16, 32\)"):
        mlx_models.load(bad)


def test_missing_weight_is_refused(tiny, tmp_path):
    bad = tmp_path / "missing"
    shutil.copytree(tiny["quick_gelu"], bad)
    weights = load_safetensors(bad)
    del weights["visual_projection.weight"]
    mx.save_safetensors(str(bad / "model.safetensors"), weights)
    with pytest.raises(WeightsError, match="visual_projection.weight"):
        mlx_models.load(bad)


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"text_config": {"hidden_size": 10**9}}, r"text_config\.hidden_size=1000000000"),
        ({"vision_config": {"num_hidden_layers": 10**6}}, r"vision_config\.num_hidden_layers"),
        ({"vision_config": {"hidden_size": 96, "num_attention_heads": 7}}, "divisible"),
        ({"text_config": {"hidden_act": "swish"}}, "hidden_act"),
        ({"text_config": {"layer_norm_eps": 0}}, "layer_norm_eps"),
        ({"text_config": {"vocab_size": "many"}}, "vocab_size"),
        ({"model_type": "siglip"}, "model_type"),
        (
            {"text_config": {"hidden_size": 16384, "intermediate_size": 65536, "num_hidden_layers": 256}},
            "parameters",
        ),
    ],
)
def test_absurd_config_is_refused_before_allocation(cfg, match):
    with pytest.raises(ConfigError, match=match):
        clip.build_model(cfg)


def test_default_config_is_vit_b32():
    cfg = clip.ModelConfig.from_dict({"model_type": "clip"})
    assert (cfg.vision_config.hidden_size, cfg.vision_config.patch_size, cfg.projection_dim) == (768, 32, 512)
    assert cfg.text_config.max_position_embeddings == 77


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (normalised(a) * normalised(b)).sum(-1)


@pytest.fixture(scope="module")
def quant_ckpt(tmp_path_factory) -> Path:
    # Every linear input width a multiple of 64, so every linear layer is quantized.
    return make_clip_checkpoint(
        tmp_path_factory.mktemp("clip_q") / "q",
        seed=3,
        hidden_size=64,
        intermediate_size=128,
        projection_dim=64,
        image_size=32,
        patch_size=8,
    )


# 4-bit text is looser on purpose: on random weights the text tower's residual stream is no larger than
# each layer's output, so every 4-bit matmul (~0.5% cosine each on Gaussian weights) shows; measured
# min cosine 0.961-0.985 over seeds 1-3 at group size 64, 0.986 at 32 (images 0.995). Vision's pre-LayerNorm keeps its stream dominant.
@pytest.mark.parametrize("bits, min_cos_img, min_cos_txt", [(8, 0.999, 0.999), (4, 0.99, 0.95)])
def test_quantized_model_stays_close_to_fp32(quant_ckpt, bits, min_cos_img, min_cos_txt):
    bundle = mlx_models.load(quant_ckpt)
    ref_img, ref_txt = mlx_embeddings(bundle, images(), TEXTS)
    recorded = quantize_model(bundle.model, bits)
    assert recorded == {"group_size": {8: 64, 4: 32}[bits], "bits": bits}
    assert hasattr(bundle.model.text_model.encoder.layers[0].mlp.fc1, "scales")
    img, txt = mlx_embeddings(bundle, images(), TEXTS)
    assert cosine_rows(img, ref_img).min() >= min_cos_img
    assert cosine_rows(txt, ref_txt).min() >= min_cos_txt


def test_compute_dtype_follows_weights(tiny):
    bundle = mlx_models.load(tiny["quick_gelu"])
    ref_img, ref_txt = mlx_embeddings(bundle, images(), TEXTS)
    bundle.model.set_dtype(mx.bfloat16)
    pixels = mx.array(np.stack([bundle.preprocess(im) for im in images()]))
    assert bundle.model.get_image_features(pixels).dtype == mx.bfloat16
    img, txt = mlx_embeddings(bundle, images(), TEXTS)
    assert cosine_rows(img, ref_img).min() >= 0.99
    assert cosine_rows(txt, ref_txt).min() >= 0.99


def test_wrong_pixel_shape_is_refused(tiny):
    bundle = mlx_models.load(tiny["quick_gelu"])
    with pytest.raises(ModelError, match="pixel_values"):
        bundle.model.get_image_features(mx.zeros((1, 3, 32, 32)))


@pytest.mark.slow
def test_full_size_vit_b32_matches_transformers(tmp_path_factory):
    path = make_clip_checkpoint(tmp_path_factory.mktemp("clip_b32") / "b32", preset="vit-b32", seed=11)
    bundle = mlx_models.load(path)
    assert bundle.embed_dim == 512
    imgs, texts = images()[:2], [TEXTS[1], TEXTS[4]]
    ref_img, ref_txt = reference_embeddings(path, imgs, texts)
    img, txt = mlx_embeddings(bundle, imgs, texts)
    assert np.abs(img - ref_img).max() <= EMBED_TOL
    assert np.abs(txt - ref_txt).max() <= EMBED_TOL
