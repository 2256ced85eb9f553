"""The torch backend: the original CLIP/SigLIP through transformers, on CUDA when present, else the CPU.

It reads an HF checkpoint folder or an unquantized MLX folder written by `converters.convert`
(same tensor names; only the conv layout differs). It is the reference the MLX backend is tested
against, and the fast path on machines with an NVIDIA GPU. torch is imported only when it is created.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.core.backends import import_torch, l2_normalize
from app.core.backends.ids import model_id_for, search_hints
from app.core.errors import BackendError

_CLASSES = {  # model_type -> (config, model, Pillow image processor) class names in transformers
    "clip": ("CLIPConfig", "CLIPModel", "CLIPImageProcessorPil"),
    "siglip": ("SiglipConfig", "SiglipModel", "SiglipImageProcessorPil"),
}


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BackendError(f"{folder / 'config.json'}: not readable ({e})") from e
    if not isinstance(cfg, dict) or cfg.get("model_type") not in _CLASSES:
        mt = cfg.get("model_type") if isinstance(cfg, dict) else None
        raise BackendError(f"{folder}: model_type {mt!r} is not an image-text embedder (clip, siglip)")
    return cfg


def _weight_files(folder: Path) -> list[Path]:
    from mlx_models.common.errors import ModelError
    from mlx_models.common.weights import safetensors_files

    try:
        return safetensors_files(folder)
    except ModelError as e:
        raise BackendError(str(e)) from e


def load_state_dict(folder: Path) -> dict[str, Any]:
    """The folder's tensors with HF names and PyTorch layouts (MLX folders get their convs transposed back)."""
    from safetensors import safe_open

    state: dict[str, Any] = {}
    for f in _weight_files(folder):
        try:
            with safe_open(str(f), framework="pt") as fh:
                is_mlx = (fh.metadata() or {}).get("format") == "mlx"
                for k in fh.keys():
                    if k.endswith(".position_ids"):  # a buffer older checkpoints saved; the model rebuilds it
                        continue
                    t = fh.get_tensor(k)
                    if is_mlx and t.ndim == 4:
                        t = t.permute(
                            0, 3, 1, 2
                        ).contiguous()  # MLX conv [out, kh, kw, in] -> torch [out, in, kh, kw]
                    state[k] = t
        except (OSError, RuntimeError, ValueError) as e:
            raise BackendError(f"{f}: not a readable safetensors file ({e})") from e
    return state


def _portable_processor(folder: Path, model_type: str) -> Any:
    """Our port of this folder's image processor (settings only, tested equal to transformers' Pillow
    processor within 1e-5): it pickles small, so decode workers return the model input itself. None
    where it cannot be built; the parent then preprocesses with transformers."""
    try:
        from mlx_models.registry import family_module

        return family_module(model_type).ImageProcessor.from_folder(folder)
    except Exception:  # noqa: BLE001 - a missing or odd processor config: the HF path still works
        return None


class TorchEmbedder:
    """`Embedder` running transformers' CLIPModel/SiglipModel; float32 unless `dtype` says otherwise."""

    name = "torch"

    def __init__(self, folder: Path, device: str | None = None, dtype: str = "float32") -> None:
        folder = Path(folder)
        try:
            torch = import_torch()
            import transformers
        except ImportError as e:
            raise BackendError(
                f"the torch backend needs torch and transformers: pip install 'fovea-search[torch]' ({e})"
            ) from e
        cfg = _read_config(folder)
        q = cfg.get("quantization")
        if q:
            raise BackendError(
                f"{folder}: holds {q.get('bits')}-bit MLX-quantized weights, which only the mlx backend runs; "
                "use the HF checkpoint or an unquantized conversion"
            )
        self._torch = torch
        self.model_type: str = cfg["model_type"]
        config_cls, model_cls, proc_cls = (getattr(transformers, n) for n in _CLASSES[self.model_type])
        hf_cfg = config_cls.from_dict({k: v for k, v in cfg.items() if k not in ("fovea", "quantization")})
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._dtype = getattr(torch, dtype)
        with torch.device("cpu"):
            model = model_cls(hf_cfg)
        self._load(model, load_state_dict(folder), folder)
        self.model = model.to(self.device, self._dtype).eval()

        self._processor = proc_cls.from_pretrained(folder)
        self.portable_preprocess = _portable_processor(folder, self.model_type)
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as e:
            raise BackendError(f"{folder}: no usable tokenizer files ({str(e).splitlines()[0]})") from e
        self._text_len = int(hf_cfg.text_config.max_position_embeddings)
        self.folder = Path(folder)
        self.model_id = model_id_for(folder)
        self.weak_cosine = search_hints(folder)
        self.logit_scale = float(model.logit_scale.detach().float().exp().item())
        self.logit_bias = (
            float(model.logit_bias.detach().float().item()) if self.model_type == "siglip" else None
        )
        head = model.text_projection if self.model_type == "clip" else model.text_model.head
        self.dim = int(head.out_features)
        self.image_size = int(hf_cfg.vision_config.image_size)
        self.patch_size = int(hf_cfg.vision_config.patch_size)  # the occlusion grid of app.core.explain

    @staticmethod
    def _load(model: Any, state: dict[str, Any], folder: Path) -> None:
        """Strict load: every parameter present, nothing extra, every shape equal."""
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise BackendError(
                f"{folder}: weights do not match the config ({len(missing)} missing, e.g. {missing[:2]}; "
                f"{len(unexpected)} unexpected, e.g. {unexpected[:2]})"
            )
        for k, v in expected.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise BackendError(
                    f"{folder}: weight {k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}"
                )
        model.load_state_dict({k: t.float() for k, t in state.items()}, strict=True)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """The HF image processor's Pillow path, returned channels-last as the protocol asks."""
        pixels = self._processor(images=[image.convert("RGB")], return_tensors="np")["pixel_values"]
        return np.ascontiguousarray(pixels[0].transpose(1, 2, 0), dtype=np.float32)  # (3,H,W) -> (H,W,3)

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(
            0, 3, 1, 2
        )  # NHWC -> NCHW
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=x.to(self.device, self._dtype))
        out = getattr(out, "pooler_output", out)  # transformers 5 returns an output object
        return l2_normalize(out.float().cpu().numpy())

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_pixels(np.stack([self.preprocess(im) for im in images]))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        torch = self._torch
        if self.model_type == "siglip":
            # SigLIP's convention: fixed-length padding and no attention mask, as it was trained.
            enc = self._tokenizer(
                list(texts),
                padding="max_length",
                truncation=True,
                max_length=self._text_len,
                return_tensors="pt",
            )
            kwargs = {"input_ids": enc["input_ids"].to(self.device)}
        else:
            enc = self._tokenizer(
                list(texts), padding=True, truncation=True, max_length=self._text_len, return_tensors="pt"
            )
            kwargs = {
                "input_ids": enc["input_ids"].to(self.device),
                "attention_mask": enc["attention_mask"].to(self.device),
            }
        with torch.inference_mode():
            out = self.model.get_text_features(**kwargs)
        out = getattr(out, "pooler_output", out)
        return l2_normalize(out.float().cpu().numpy())
