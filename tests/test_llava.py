"""LLaVA in MLX against transformers' LlavaForConditionalGeneration on tiny random checkpoints.

Tolerances: logits max-abs <= 1e-4 in fp32; 32 greedy tokens identical. With random weights EOS could end
generation anywhere, so the 32-token comparison turns EOS off on both sides; a second test stops on a chosen
EOS token and checks both sides stop at the same place and return that EOS as the last token.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx_models
from mlx_models.common.errors import ConfigError
from mlx_models.common.weights import load_safetensors
from mlx_models.llava import ModelConfig, sanitize

import mlx.core as mx  # noqa: I001  (after mlx_models)
import numpy as np
import pytest
from PIL import Image

from tests.builders.llava import make_llava_checkpoint

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

PRESETS = ("tiny-siglip-qwen2", "tiny-clip-llama")
PROMPT = "Describe the image in one sentence."


@pytest.fixture(scope="module", params=PRESETS)
def ckpt(request, tmp_path_factory) -> Path:
    return make_llava_checkpoint(tmp_path_factory.mktemp(request.param) / "hf", preset=request.param, seed=3)


@pytest.fixture(scope="module")
def image() -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray((rng.random((45, 60, 3)) * 255).astype(np.uint8))  # not square: resize/crop matter


@pytest.fixture(scope="module")
def loaded(ckpt, image):
    """(our CaptionModel, transformers model, the HF processor's inputs), loaded once per checkpoint."""
    return (mlx_models.load(ckpt), *_hf(ckpt, image))


def _hf(folder: Path, image: Image.Image):
    model = transformers.LlavaForConditionalGeneration.from_pretrained(
        str(folder), dtype=torch.float32
    ).eval()
    proc = transformers.AutoProcessor.from_pretrained(str(folder))
    msgs = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": PROMPT}]}
    ]
    inputs = proc.apply_chat_template(
        msgs, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    return model, inputs


def _hf_generate(model, inputs, n: int, eos: int | None) -> list[int]:
    model.generation_config.eos_token_id = eos
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=n, do_sample=False)
    return out[0, inputs["input_ids"].shape[1] :].tolist()


def test_prompt_ids_and_pixels_equal_the_hf_processor(loaded, image):
    cap, _, inputs = loaded
    assert cap.prompt_ids(PROMPT) == inputs["input_ids"][0].tolist()
    ours = cap.preprocess(image)
    ref = inputs["pixel_values"][0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_logits_match_transformers_fp32(loaded):
    cap, model, inputs = loaded
    with torch.no_grad():
        ref = model(**inputs).logits[0].numpy()
    ids = mx.array(inputs["input_ids"].numpy().astype(np.int32))
    pixels = mx.array(inputs["pixel_values"].permute(0, 2, 3, 1).numpy())
    ours = np.array(cap.model(ids, pixels)[0])
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-4


def test_32_greedy_tokens_match_transformers(loaded, image):
    cap, model, inputs = loaded
    ref = _hf_generate(model, inputs, 32, eos=None)
    ours = cap.generate(image, PROMPT, max_tokens=32, eos_token_ids=())
    assert len(ref) == 32
    assert ours == ref


def test_stops_on_eos_and_returns_it_like_transformers(loaded, image):
    cap, model, inputs = loaded
    free = cap.generate(image, PROMPT, max_tokens=12, eos_token_ids=())
    eos = free[4]  # pretend the fifth token is EOS: generation must end right after its first occurrence
    expected = free[: free.index(eos) + 1]
    assert cap.generate(image, PROMPT, max_tokens=12, eos_token_ids=(eos,)) == expected
    assert _hf_generate(model, inputs, 12, eos=eos) == expected


def test_token_limit_and_sampling_are_honoured(loaded, image):
    cap = loaded[0]
    assert len(cap.generate(image, PROMPT, max_tokens=5, eos_token_ids=())) == 5
    assert cap.generate(image, PROMPT, max_tokens=0) == []
    a = cap.generate(image, PROMPT, max_tokens=8, temperature=1.0, top_p=0.9, seed=1, eos_token_ids=())
    b = cap.generate(image, PROMPT, max_tokens=8, temperature=1.0, top_p=0.9, seed=1, eos_token_ids=())
    assert a == b and len(a) == 8  # seeded sampling is reproducible
    with pytest.raises(ValueError):
        cap.generate(image, PROMPT, max_tokens=4, top_p=0.0)


def _layouts(hf: dict[str, mx.array]) -> dict[str, dict[str, mx.array]]:
    """The three ways checkpoints name things, derived from a transformers-5 save (vision_tower.* flat)."""
    hub, prefixed = {}, {}
    for k, v in hf.items():
        if k.startswith("vision_tower."):
            hub["vision_tower.vision_model." + k[len("vision_tower.") :]] = v
            prefixed["model.vision_tower.vision_model." + k[len("vision_tower.") :]] = v
        elif k.startswith("language_model.model."):
            hub[k] = v
            prefixed["model.language_model." + k[len("language_model.model.") :]] = v
        elif k.startswith("language_model.lm_head."):
            hub[k] = v
            prefixed[k[len("language_model.") :]] = v
        else:
            hub[k] = v
            prefixed["model." + k] = v
    return {"flat": hf, "hub": hub, "prefixed": prefixed}


def test_sanitize_accepts_all_three_layouts_and_is_idempotent(ckpt):
    cfg = ModelConfig.from_dict(json.loads((ckpt / "config.json").read_text()))
    hf = load_safetensors(ckpt)
    outs = {name: sanitize(w, cfg.tie_word_embeddings) for name, w in _layouts(hf).items()}
    keys = set(outs["hub"])
    assert all(set(o) == keys for o in outs.values())
    assert all(
        k.startswith(("vision_tower.vision_model.", "multi_modal_projector.", "language_model."))
        for k in keys
    )
    for o in outs.values():
        assert all(np.array_equal(np.array(o[k]), np.array(outs["hub"][k])) for k in keys)
    again = sanitize(outs["hub"], cfg.tie_word_embeddings)
    assert set(again) == keys and all(
        np.array_equal(np.array(again[k]), np.array(outs["hub"][k])) for k in keys
    )


def test_tied_checkpoint_with_a_stray_lm_head_still_loads(ckpt):
    cfg = ModelConfig.from_dict(json.loads((ckpt / "config.json").read_text()))
    w = sanitize(load_safetensors(ckpt), cfg.tie_word_embeddings)
    if cfg.tie_word_embeddings:
        w["language_model.lm_head.weight"] = w["language_model.model.embed_tokens.weight"]
        assert "language_model.lm_head.weight" not in sanitize(w, True)
    else:
        assert "language_model.lm_head.weight" in w  # untied: the head is its own weight


def test_rope_theta_is_read_from_rope_parameters():
    cfg = ModelConfig.from_dict(
        {"model_type": "llava", "vision_config": {"model_type": "siglip_vision_model"},
         "text_config": {"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 1, "intermediate_size": 64,
                         "num_attention_heads": 4, "vocab_size": 10,
                         "rope_parameters": {"rope_theta": 5000.0, "rope_type": "default"}}}
    )  # fmt: skip
    assert cfg.lm_args()["rope_theta"] == 5000.0  # mlx-lm alone would fall back to 1e6 for qwen2


@pytest.mark.parametrize(
    "change",
    [
        {"text_config": {"model_type": "gpt2"}},
        {"vision_config": {"model_type": "dinov2"}},
        {"vision_feature_select_strategy": "cls"},
        {"vision_feature_layer": 99},
        {"projector_hidden_act": "swish-ish"},
    ],
)
def test_config_refuses_what_the_port_cannot_run(change):
    d = {
        "model_type": "llava",
        "vision_config": {"model_type": "clip_vision_model"},
        "text_config": {"model_type": "llama"},
    }
    for k, v in change.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) else v
    with pytest.raises(ConfigError):
        ModelConfig.from_dict(d)


@pytest.fixture(scope="module")
def converted(ckpt, tmp_path_factory) -> Path:
    from converters.llava import convert_llava

    dst = tmp_path_factory.mktemp("mlx") / "fp32"
    res = convert_llava(ckpt, dst, verify=True)
    assert res.report is not None and res.report.passed, res.report
    return dst


def test_converted_folder_matches_transformers_and_carries_rope_theta(converted, loaded, image):
    _, model, inputs = loaded
    cfg = json.loads((converted / "config.json").read_text())
    assert cfg["text_config"]["rope_theta"] == cfg["text_config"]["rope_parameters"]["rope_theta"]
    cap = mlx_models.load(converted)
    assert cap.prompt_ids(PROMPT) == inputs["input_ids"][0].tolist()
    with torch.no_grad():
        ref = model(**inputs).logits[0].numpy()
    ours = np.array(cap.model(mx.array([cap.prompt_ids(PROMPT)]), mx.array(cap.preprocess(image)[None]))[0])
    assert np.abs(ours - ref).max() <= 1e-4


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_conversion_quantizes_only_the_language_model(ckpt, loaded, image, tmp_path, bits):
    from converters.llava import convert_llava

    _, model, inputs = loaded
    res = convert_llava(ckpt, tmp_path / f"q{bits}", quantize=bits)
    assert res.quantization == {"bits": bits, "group_size": 64}
    names = set(load_safetensors(tmp_path / f"q{bits}"))
    scaled = {k for k in names if k.endswith(".scales")}
    assert scaled and all(k.startswith("language_model.") for k in scaled)
    assert "language_model.model.layers.0.mlp.down_proj.scales" in scaled
    cap = mlx_models.load(tmp_path / f"q{bits}")
    with torch.no_grad():
        ref = model(**inputs).logits[0].numpy()
    ours = np.array(cap.model(mx.array([cap.prompt_ids(PROMPT)]), mx.array(cap.preprocess(image)[None]))[0])
    a, b = ours - ours.mean(-1, keepdims=True), ref - ref.mean(-1, keepdims=True)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    # A broken packing or a skipped layer drops this to ~0; 4-bit on width-64 random layers measures ~0.93.
    assert cos.min() >= (0.99 if bits == 8 else 0.85)


def test_mlx_and_torch_captioners_agree(ckpt, converted, image):
    from app.core.backends.torch_captioner import TorchCaptioner
    from app.core.captions_backend import Captioner, MlxCaptioner

    mlx_cap = MlxCaptioner(converted)
    assert isinstance(mlx_cap, Captioner)
    ours = mlx_cap.caption(image, PROMPT, max_tokens=10)
    for folder in (ckpt, converted):  # the HF source and our MLX folder both load on torch
        ref = TorchCaptioner(folder).caption(image, PROMPT, max_tokens=10)
        assert ref.tokens == ours.tokens and ref.text == ours.text
    assert 1 <= len(ours.tokens) <= 10


def test_captioner_refuses_bad_sampling_arguments(converted, image):
    from app.core.captions_backend import MlxCaptioner
    from app.core.errors import UsageError

    cap = MlxCaptioner(converted)
    for kwargs in (
        {"max_tokens": 0},
        {"max_tokens": 4, "top_p": 0.0},
        {"max_tokens": 4, "temperature": -1.0},
    ):
        with pytest.raises(UsageError):
            cap.caption(image, PROMPT, **kwargs)
