"""CLIP image preprocessing, equal to transformers' `CLIPImageProcessorPil` (the Pillow path).

RGB (alpha composited on white) -> bicubic resize of the shortest edge -> center crop (zero-padded
when too small) -> rescale by 1/255 -> (x - mean) / std, returned channels-last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..common.config import read_image_processor_config
from ..common.errors import ConfigError

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of `image`; transparency is composited onto white, as transformers does."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def shortest_edge_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the short side at `size`; the long side is truncated, not rounded (HF's rule)."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    return (new_long, size) if width <= height else (size, new_long)


def center_crop(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Center crop of an (H, W, C) array; too-small images are zero-padded first, as transformers does."""
    h, w = arr.shape[:2]
    top, left = (h - height) // 2, (w - width) // 2
    if top >= 0 and left >= 0:
        return arr[top : top + height, left : left + width]
    nh, nw = max(height, h), max(width, w)
    pad_top, pad_left = math.ceil((nh - h) / 2), math.ceil((nw - w) / 2)
    padded = np.zeros((nh, nw) + arr.shape[2:], dtype=arr.dtype)
    padded[pad_top : pad_top + h, pad_left : pad_left + w] = arr
    top, left = top + pad_top, left + pad_left
    return padded[max(0, top) : min(nh, top + height), max(0, left) : min(nw, left + width)]


def _hw(value: Any, key: str) -> dict[str, int]:
    """Old configs give a bare int; transformers reads it as shortest edge (size) or a square (crop)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"shortest_edge": value} if key == "size" else {"height": value, "width": value}
    if isinstance(value, dict):
        return value
    raise ConfigError(f"image processor {key}={value!r} is not an int or an object")


@dataclass(frozen=True)
class ImageProcessor:
    """Holds only settings, so one instance is safe to call from many decode threads."""

    do_resize: bool = True
    size: dict[str, int] | None = None
    resample: int = 3  # PIL bicubic
    do_center_crop: bool = True
    crop_size: dict[str, int] | None = None
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, ...] = OPENAI_CLIP_MEAN
    image_std: tuple[float, ...] = OPENAI_CLIP_STD

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageProcessor:
        size = _hw(d.get("size", 224), "size")
        crop = _hw(d.get("crop_size", 224), "crop_size")
        if "shortest_edge" not in size and not {"height", "width"} <= set(size):
            raise ConfigError(f"image processor size={size!r}: need shortest_edge or height and width")
        if not {"height", "width"} <= set(crop):
            raise ConfigError(f"image processor crop_size={crop!r}: need height and width")
        mean, std = d.get("image_mean", OPENAI_CLIP_MEAN), d.get("image_std", OPENAI_CLIP_STD)
        if isinstance(mean, (int, float)):
            mean = [mean] * 3
        if isinstance(std, (int, float)):
            std = [std] * 3
        return cls(
            do_resize=bool(d.get("do_resize", True)),
            size=size,
            resample=int(d.get("resample", 3)),
            do_center_crop=bool(d.get("do_center_crop", True)),
            crop_size=crop,
            do_rescale=bool(d.get("do_rescale", True)),
            rescale_factor=float(d.get("rescale_factor", 1 / 255)),
            do_normalize=bool(d.get("do_normalize", True)),
            image_mean=tuple(float(x) for x in mean),
            image_std=tuple(float(x) for x in std),
        )

    @classmethod
    def from_folder(cls, path: str | Path) -> ImageProcessor:
        """Read preprocessor_config.json, or the image processor inside processor_config.json."""
        return cls.from_dict(read_image_processor_config(Path(path)))

    def resize(self, image: Image.Image) -> Image.Image:
        size = self.size or {"shortest_edge": 224}
        if "shortest_edge" in size:
            h, w = shortest_edge_size(image.height, image.width, int(size["shortest_edge"]))
        else:
            h, w = int(size["height"]), int(size["width"])
        return image.resize((w, h), resample=self.resample)

    def __call__(self, image: Image.Image) -> np.ndarray:
        """One PIL image -> (H, W, 3) float32 model input."""
        image = to_rgb(image)
        if self.do_resize:
            image = self.resize(image)
        arr: np.ndarray = np.asarray(image)  # (H, W, 3) uint8
        if self.do_center_crop:
            crop = self.crop_size or {"height": 224, "width": 224}
            arr = center_crop(arr, int(crop["height"]), int(crop["width"]))
        if self.do_rescale:
            # float64 product then float32, in that order, to match transformers bit for bit.
            arr = (arr.astype(np.float64) * self.rescale_factor).astype(np.float32)
        arr = arr.astype(np.float32)
        if self.do_normalize:
            arr = (arr - np.asarray(self.image_mean, np.float32)) / np.asarray(self.image_std, np.float32)
        return np.ascontiguousarray(arr, dtype=np.float32)
