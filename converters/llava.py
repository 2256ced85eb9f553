"""HF `LlavaForConditionalGeneration` folder -> MLX LLaVA folder, and its check against transformers.

Differences from the embedder path in `convert.py`: `sanitize` needs the tying flag (a tied checkpoint
may still carry `lm_head`), only the language model is quantized (the tower and projector are small and
sensitive), and text_config gets an explicit `rope_theta` taken from `rope_parameters`, since mlx-lm
would silently use its own default.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx_models  # noqa: F401  (prepares the MLX runtime before mlx is imported)
from mlx_models import llava
from mlx_models.common.config import read_json
from mlx_models.common.quant import DEFAULT_GROUP_SIZE, quantizable, quantize_model
from mlx_models.common.weights import check_weights

import mlx.core as mx  # noqa: I001  (after mlx_models)
import numpy as np
from mlx.utils import tree_flatten
from PIL import Image

from .convert import (
    CONVERTER_VERSION,
    DTYPES,
    ConvertError,
    ConvertResult,
    _check_destination,
    read_weights,
    ship,
)

VERIFY_PROMPT = "Describe this image."
FP32_MAX_ABS = 1e-3  # logits of a real (0.5B+) model in fp32; the tiny test models meet 1e-4
# Per-position logits, centred. 4-bit is coarse (0.93 on the tiny random test models); it catches broken packing.
MIN_COSINE = {"float16": 0.999, "bfloat16": 0.995, 8: 0.99, 4: 0.9}


def _write_tokenizer(src: Path, out: Path) -> None:
    for name in llava.TOKENIZER_FILES + llava.PROCESSOR_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
    if not (
        out / "tokenizer.json"
    ).is_file():  # slow-tokenizer checkpoints: let transformers build the fast file
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(str(src)).save_pretrained(str(out))
        if not (out / "tokenizer.json").is_file():
            raise ConvertError(f"{src}: could not produce tokenizer.json from the tokenizer files")


def out_config(cfg: dict[str, Any], mc: llava.ModelConfig, dtype: str, src: Path) -> dict[str, Any]:
    out = {k: v for k, v in cfg.items() if k not in ("quantization", "fovea")}
    args = mc.lm_args()
    out["text_config"] = {**cfg.get("text_config", {}), "rope_theta": args.get("rope_theta")}
    if args.get("rope_scaling"):
        out["text_config"]["rope_scaling"] = args["rope_scaling"]
    if out["text_config"]["rope_theta"] is None:  # neither key given: mlx-lm's default is the model's default
        del out["text_config"]["rope_theta"]
    out["tie_word_embeddings"] = mc.tie_word_embeddings
    out["fovea"] = {"source": str(src.resolve()), "dtype": dtype, "converter_version": CONVERTER_VERSION}
    return out


def convert_llava(
    src: Path, dst: Path, *, dtype: str = "float32", quantize: int | None = None,
    allow_pickle: bool = False, verify: bool = False,
) -> ConvertResult:  # fmt: skip
    """Convert an HF LLaVA folder; `quantize` (8 or 4 bits) applies to the language model's linear layers."""
    src, dst = Path(src), Path(dst)
    if dtype not in DTYPES:
        raise ConvertError(f"dtype {dtype!r} is not supported (choose from {', '.join(DTYPES)})")
    if quantize is not None and quantize not in (4, 8):
        raise ConvertError(f"quantization to {quantize} bits is not supported (choose from (4, 8))")
    _check_destination(dst)
    cfg = read_json(src / "config.json")
    mc = llava.ModelConfig.from_dict(cfg)
    weights = llava.sanitize(read_weights(src, allow_pickle), mc.tie_word_embeddings)
    model = llava.build_model(cfg)
    check_weights(model, weights, src)
    target = DTYPES[dtype]
    model.load_weights(
        [(k, v.astype(target) if mx.issubdtype(v.dtype, mx.floating) else v) for k, v in weights.items()]
    )

    out_cfg = out_config(cfg, mc, dtype, src)
    quantization = None
    if quantize is not None:
        if not any(quantizable(m) for _, m in model.language_model.named_modules()):
            raise ConvertError(
                f"no language-model linear layer has an input width divisible by {DEFAULT_GROUP_SIZE}"
            )
        quantization = quantize_model(model.language_model, quantize, DEFAULT_GROUP_SIZE)
        out_cfg["quantization"] = quantization
    tensors = dict(tree_flatten(model.parameters()))
    mx.eval(tensors)

    def write(tmp: Path) -> None:
        mx.save_safetensors(str(tmp / "model.safetensors"), tensors, metadata={"format": "mlx"})
        (tmp / "config.json").write_text(
            json.dumps(out_cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        _write_tokenizer(src, tmp)

    report = ship(dst, write, (lambda tmp: verify_llava(src, tmp)) if verify else None)
    n_bytes = (dst / "model.safetensors").stat().st_size
    return ConvertResult(dst, "llava", dtype, quantization, len(tensors), n_bytes, report)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LlavaVerifyReport:
    """Logits of our folder vs transformers on the source, for one generated image and the verify prompt."""

    metric: str  # "max_abs" (fp32) or "min_cosine"
    threshold: float
    value: float
    tokens_equal: bool
    passed: bool
    reason: str

    @property
    def summary(self) -> str:
        cmp = "<=" if self.metric == "max_abs" else ">="
        return f"logits {self.metric} {self.value:.3g} ({cmp} {self.threshold}), prompt tokens equal: {self.tokens_equal}"


def verify_llava(src_hf: Path, dst_mlx: Path) -> LlavaVerifyReport:
    """Run both pipelines (processor + chat template + model) and compare the prompt's logits."""
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((300, 400, 3)) * 255).astype(np.uint8))
    ref_model = LlavaForConditionalGeneration.from_pretrained(str(src_hf), dtype=torch.float32).eval()
    proc = AutoProcessor.from_pretrained(str(src_hf))
    msgs = [
        {
            "role": "user",
            "content": [{"type": "image", "image": image}, {"type": "text", "text": VERIFY_PROMPT}],
        }
    ]
    inputs = proc.apply_chat_template(
        msgs, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        ref = ref_model(**inputs).logits[0].float().numpy()
    cap = llava.load(dst_mlx)
    ids = cap.prompt_ids(VERIFY_PROMPT)
    tokens_equal = ids == inputs["input_ids"][0].tolist()
    pixels = mx.array(cap.preprocess(image)[None])
    ours = np.array(cap.model(mx.array([ids], dtype=mx.int32), pixels)[0].astype(mx.float32))
    cfg = read_json(dst_mlx / "config.json")
    q = (cfg.get("quantization") or {}).get("bits")
    dtype = cfg.get("fovea", {}).get("dtype", "float32")
    if not tokens_equal or ours.shape != ref.shape:
        return LlavaVerifyReport("max_abs", FP32_MAX_ABS, float("inf"), tokens_equal, False,
                                 "prompt token ids differ from the HF processor's")  # fmt: skip
    if q is None and dtype == "float32":
        value = float(np.abs(ours - ref).max())
        ok = value <= FP32_MAX_ABS
        return LlavaVerifyReport(
            "max_abs", FP32_MAX_ABS, value, True, ok, "" if ok else f"logits max-abs {value:.3g}"
        )
    a, b = ours - ours.mean(-1, keepdims=True), ref - ref.mean(-1, keepdims=True)
    value = float((np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))).min())
    threshold = MIN_COSINE[q if q is not None else dtype]
    ok = value >= threshold
    return LlavaVerifyReport(
        "min_cosine", threshold, value, True, ok, "" if ok else f"logits min cosine {value:.4f}"
    )
