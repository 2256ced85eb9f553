"""CLIP image preprocessing, equal to transformers' `CLIPImageProcessorPil` (the Pillow path).

RGB (alpha composited on white) -> bicubic resize of the shortest edge -> center crop (zero-padded
when too small) -> rescale by 1/255 -> (x - mean) / std, returned channels-last. A photo decoded reduced
(JPEG draft) may come with its full size: the resize then follows the full photo's grid (`common.reduced`).
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
from ..common.reduced import reduction, source_box
from ..common.rgb import to_rgb

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


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

    def resized_hw(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of an image of this size after the resize step."""
        size = self.size or {"shortest_edge": 224}
        if "shortest_edge" in size:
            return shortest_edge_size(height, width, int(size["shortest_edge"]))
        return int(size["height"]), int(size["width"])

    def resize(self, image: Image.Image) -> Image.Image:
        h, w = self.resized_hw(image.height, image.width)
        return image.resize((w, h), resample=self.resample)

    def __call__(self, image: Image.Image, full_size: tuple[int, int] | None = None) -> np.ndarray:
        """One PIL image -> (H, W, 3) float32 model input.

        `full_size`: the (width, height) of the photo that `image` is a whole-factor reduction of (JPEG
        draft, `reduce`). The resize then samples `image` on the full photo's grid, as the reference does
        on the full decode, and computes the crop only. Otherwise this is transformers' processor exactly."""
        image = to_rgb(image)
        k = reduction(image.size, full_size)
        if self.do_resize and k > 1 and full_size is not None:
            cropped = self._resize_crop_reduced(image, full_size, k)
            if cropped is not None:
                return self._rescale_normalise(cropped)
        if self.do_resize:
            image = self.resize(image)
        arr: np.ndarray = np.asarray(image)  # (H, W, 3) uint8
        if self.do_center_crop:
            crop = self.crop_size or {"height": 224, "width": 224}
            arr = center_crop(arr, int(crop["height"]), int(crop["width"]))
        return self._rescale_normalise(arr)

    def _resize_crop_reduced(
        self, image: Image.Image, full_size: tuple[int, int], k: int
    ) -> np.ndarray | None:
        """Resize and crop in one step, placed as on the full photo; None when the crop would pad."""
        h, w = self.resized_hw(full_size[1], full_size[0])
        crop = (
            (self.crop_size or {"height": 224, "width": 224})
            if self.do_center_crop
            else {"height": h, "width": w}
        )
        ch, cw = int(crop["height"]), int(crop["width"])
        top, left = (h - ch) // 2, (w - cw) // 2  # as center_crop
        if top < 0 or left < 0:
            return None
        box = source_box((left, top, left + cw, top + ch), (w, h), full_size, k, image.size)
        return np.asarray(image.resize((cw, ch), resample=self.resample, box=box))  # (ch, cw, 3) uint8

    def _rescale_normalise(self, arr: np.ndarray) -> np.ndarray:
        if self.do_rescale:
            # float64 product then float32, in that order, to match transformers bit for bit.
            arr = (arr.astype(np.float64) * self.rescale_factor).astype(np.float32)
        else:
            arr = arr.astype(np.float32)
        if self.do_normalize:  # in place on the new float32 array: the same values, no temporaries
            arr -= np.asarray(self.image_mean, np.float32)
            arr /= np.asarray(self.image_std, np.float32)
        return np.ascontiguousarray(arr)
