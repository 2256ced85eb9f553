"""Reference captioner: transformers' LlavaForConditionalGeneration (CUDA when present, else CPU).

Reads an HF LLaVA folder directly, or an unquantized MLX folder by undoing `sanitize`'s one layout
change (the patch conv) and mapping our hub-style names onto transformers' modules. torch and
transformers are imported only when a TorchCaptioner is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from app.core.backends import import_torch
from app.core.backends.ids import model_id_for
from app.core.captions_backend import CaptionResult, check_sampling
from app.core.errors import BackendError

# our (hub 4.x) names -> transformers 5 module names
_TO_TORCH = (
    ("language_model.model.", "model.language_model."),
    ("language_model.lm_head.", "lm_head."),
    ("vision_tower.", "model.vision_tower."),
    ("multi_modal_projector.", "model.multi_modal_projector."),
)


def _load_mlx_folder(folder: Path, cfg: dict[str, Any], dtype: Any) -> Any:
    from safetensors.torch import load_file
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    if cfg.get("quantization"):
        raise BackendError(
            f"{folder}: quantized MLX weights cannot run on torch; use the float folder or the HF source"
        )
    model = LlavaForConditionalGeneration(LlavaConfig.from_pretrained(str(folder)))
    expected = set(model.state_dict())
    state = {}
    for f in sorted(folder.glob("*.safetensors")):
        for k, v in load_file(str(f)).items():
            if k.endswith("patch_embedding.weight") and v.ndim == 4:
                v = v.permute(0, 3, 1, 2)  # MLX conv [out, kh, kw, in] -> PyTorch [out, in, kh, kw]
            for ours, theirs in _TO_TORCH:
                if k.startswith(ours):
                    k = theirs + k[len(ours) :]
                    break
            flat = k.replace("model.vision_tower.vision_model.", "model.vision_tower.", 1)
            state[k if k in expected else flat] = v  # transformers 5 towers may lack the vision_model level
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and model.config.tie_word_embeddings)]
    if missing or unexpected:
        raise BackendError(
            f"{folder}: weights do not fit transformers' LLaVA (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model.tie_weights()
    return model.to(dtype)


class TorchCaptioner:
    """`Captioner` running transformers; greedy output is the reference for the MLX port."""

    name = "torch"

    def __init__(self, folder: Path) -> None:
        try:
            torch = import_torch()
            from transformers import AutoProcessor, LlavaForConditionalGeneration
        except ImportError as e:
            raise BackendError(
                "the torch backend needs torch and transformers (pip install 'fovea-search[torch]')"
            ) from e
        import json

        folder = Path(folder)
        try:
            cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BackendError(f"{folder}: unreadable config.json ({e})") from e
        if cfg.get("model_type") != "llava":
            raise BackendError(f"{folder}: not a captioning (llava) model")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        try:
            if "fovea" in cfg:  # written by our converter: MLX layout
                model = _load_mlx_folder(folder, cfg, dtype)
            else:
                model = LlavaForConditionalGeneration.from_pretrained(str(folder), dtype=dtype)
            self.processor = AutoProcessor.from_pretrained(str(folder))
        except (OSError, ValueError) as e:
            raise BackendError(f"{folder}: {e}") from e
        self.model = model.to(self.device).eval()
        self.model_id = model_id_for(folder)

    def caption(
        self, image: Image.Image, prompt: str, max_tokens: int, temperature: float = 0.0, top_p: float = 1.0
    ) -> CaptionResult:
        import torch

        check_sampling(max_tokens, temperature, top_p)
        msgs = [
            {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]}
        ]
        inputs = self.processor.apply_chat_template(
            msgs, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        ).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        sampling = (
            {"do_sample": True, "temperature": temperature, "top_p": top_p}
            if temperature > 0
            else {"do_sample": False}
        )
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=max_tokens, **sampling)
        tokens = out[0, inputs["input_ids"].shape[1] :].tolist()
        return CaptionResult(self.processor.decode(tokens, skip_special_tokens=True).strip(), tokens)
