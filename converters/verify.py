"""Check a converted MLX folder against the transformers reference run on the original HF folder.

Both sides run their whole pipeline on the same generated images and texts: the HF image processor
(Pillow path) and tokenizer with `CLIPModel`/`SiglipModel` in float32, against our preprocessing,
tokenizer and MLX model. We compare L2-normalised embeddings: max-abs difference for a float32
conversion, the lowest cosine similarity for half precision or quantized weights.
"""

from __future__ import annotations  # noqa: I001  (mlx is imported after mlx_models, on purpose)

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import mlx_models
from mlx_models.common.config import read_json
from mlx_models.common.errors import ModelError

import mlx.core as mx  # after mlx_models, which prepares the runtime
from mlx.utils import tree_flatten

FP32_MAX_ABS = 1e-4
HALF_MIN_COSINE = 0.999
QUANT_MIN_COSINE = {8: 0.999, 4: 0.99}
TEXTS = (
    "a photo of a cat",
    "A DOG running on the beach at sunset!",
    "",
    "a very long caption that keeps going " * 12,  # longer than any text context: checks truncation
)


class VerifyError(ModelError):
    """Verification could not run (missing torch/transformers, unreadable folder)."""


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of one comparison; `value` is max-abs (metric "max_abs") or min cosine ("min_cosine")."""

    model_type: str
    metric: str
    threshold: float
    image_value: float
    text_value: float
    pixel_max_abs: float  # our preprocessing vs the HF image processor, before the model
    tokens_equal: bool  # our token ids equal the HF tokenizer's
    passed: bool
    reason: str  # one line, empty when passed

    @property
    def value(self) -> float:
        return (
            max(self.image_value, self.text_value)
            if self.metric == "max_abs"
            else min(self.image_value, self.text_value)
        )

    @property
    def summary(self) -> str:
        cmp = "<=" if self.metric == "max_abs" else ">="
        return (
            f"{self.model_type} {self.metric} images {self.image_value:.3g}, texts {self.text_value:.3g} "
            f"(threshold {cmp} {self.threshold:g}); preprocessing max-abs {self.pixel_max_abs:.2g}"
        )


def sample_images(n: int, seed: int = 0) -> list[Image.Image]:
    """Deterministic RGB images of different sizes and aspect ratios: gradients, noise, blocks."""
    rng = np.random.default_rng(seed)
    sizes = [(64, 48), (37, 91), (224, 224), (300, 180), (97, 97), (512, 333)]
    out = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        if i % 3 == 0:
            arr = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], -1) * 255
        elif i % 3 == 1:
            arr = rng.uniform(0, 255, (h, w, 3))
        else:
            arr = ((xx // 8 + yy // 8) % 2)[..., None] * rng.uniform(0, 255, 3)
        out.append(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB"))
    return out


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _compare(ours: np.ndarray, ref: np.ndarray, metric: str) -> float:
    a, b = _normalize(ours), _normalize(ref)
    if metric == "max_abs":
        return float(np.abs(a - b).max())
    return float((a * b).sum(-1).min())


def _reference(src: Path, model_type: str, images: list[Image.Image], texts: list[str], text_len: int):
    """transformers' own pipeline in float32: pixels, token ids and normalised-ready embeddings."""
    try:
        import torch
        import transformers
    except ImportError as e:
        raise VerifyError(f"verification needs torch and transformers ({e})") from e

    transformers.utils.logging.disable_progress_bar()
    if model_type == "clip":
        proc = transformers.CLIPImageProcessorPil.from_pretrained(src)
        model = transformers.CLIPModel.from_pretrained(src, dtype=torch.float32)
        tok_kw: dict = {"padding": True, "truncation": True, "max_length": text_len}
    else:
        proc = transformers.SiglipImageProcessorPil.from_pretrained(src)
        model = transformers.SiglipModel.from_pretrained(src, dtype=torch.float32)
        # SigLIP was trained on fixed-length padded text and no attention mask; we match that convention.
        tok_kw = {"padding": "max_length", "truncation": True, "max_length": text_len}
    tokenizer = transformers.AutoTokenizer.from_pretrained(src)
    model.eval()
    pixels = proc(images=images, return_tensors="pt")["pixel_values"]  # (N, 3, H, W)
    enc = tokenizer(texts, return_tensors="pt", **tok_kw)
    with torch.inference_mode():
        img = model.get_image_features(pixel_values=pixels)
        if model_type == "clip":
            txt = model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        else:
            txt = model.get_text_features(input_ids=enc["input_ids"])
    img = getattr(img, "pooler_output", img)  # transformers 5 returns an output object
    txt = getattr(txt, "pooler_output", txt)
    return (
        pixels.permute(0, 2, 3, 1).numpy(),
        enc["input_ids"].numpy(),
        img.float().numpy(),
        txt.float().numpy(),
    )


def _metric_for(dst: Path, model) -> tuple[str, float]:
    q = read_json(dst / "config.json").get("quantization")
    if q:
        return "min_cosine", QUANT_MIN_COSINE.get(int(q["bits"]), 0.99)
    floats = [v.dtype for _, v in tree_flatten(model.parameters()) if mx.issubdtype(v.dtype, mx.floating)]
    if any(d != mx.float32 for d in floats):
        return "min_cosine", HALF_MIN_COSINE
    return "max_abs", FP32_MAX_ABS


def verify(src_hf: Path, dst_mlx: Path, *, n_images: int = 4) -> VerifyReport:
    """Run the transformers reference on `src_hf` and our MLX model on `dst_mlx`; never raises on a mismatch.

    Raises `VerifyError`/`ModelError` only when either side cannot be run at all.
    """
    src_hf, dst_mlx = Path(src_hf), Path(dst_mlx)
    bundle = mlx_models.load(dst_mlx)
    model_type = bundle.model_type
    images, texts = sample_images(n_images), list(TEXTS)

    ours_pix = np.stack([bundle.preprocess(im) for im in images]).astype(np.float32)
    tb = bundle.tokenize(texts)
    text_len = int(read_json(src_hf / "config.json").get("text_config", {}).get("max_position_embeddings", 0))
    text_len = text_len or int(tb.input_ids.shape[1])  # HF default configs may leave the key out
    ref_pix, ref_ids, ref_img, ref_txt = _reference(src_hf, model_type, images, texts, text_len)

    m = bundle.model
    ours_img = np.array(m.get_image_features(mx.array(ours_pix)).astype(mx.float32))
    mask = None if model_type == "siglip" else mx.array(tb.attention_mask)
    ours_txt = np.array(m.get_text_features(mx.array(tb.input_ids), mask).astype(mx.float32))

    metric, threshold = _metric_for(dst_mlx, m)
    img_v, txt_v = _compare(ours_img, ref_img, metric), _compare(ours_txt, ref_txt, metric)
    pix = float(np.abs(ours_pix - ref_pix).max()) if ours_pix.shape == ref_pix.shape else float("inf")
    tokens_equal = ref_ids.shape == tb.input_ids.shape and bool((ref_ids == tb.input_ids).all())

    ok = (lambda v: v <= threshold) if metric == "max_abs" else (lambda v: v >= threshold)
    reason = ""
    if not tokens_equal:
        reason = f"token ids differ from the HF tokenizer (ours {tb.input_ids.shape}, HF {ref_ids.shape})"
    elif not ok(img_v) or not ok(txt_v):
        worst = "images" if not ok(img_v) else "texts"
        value = img_v if worst == "images" else txt_v
        reason = f"{worst}: {metric} {value:.3g} misses the threshold {threshold:g}"
        if pix > 1e-4:
            reason += f" (preprocessing already differs by {pix:.3g})"
    return VerifyReport(model_type, metric, threshold, img_v, txt_v, pix, tokens_equal, reason == "", reason)
