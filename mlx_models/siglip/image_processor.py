"""SigLIP image preprocessing, equal to transformers' `SiglipImageProcessorPil` (the Pillow backend).

RGB (alpha composited onto white) -> square resize to (height, width) with Pillow bicubic on uint8, no crop
-> x / 255 -> (x - mean) / std. Output is channels-last (H, W, 3) float32, what the MLX conv takes.
A photo decoded reduced (JPEG draft) may come with its full size: the resize then follows the full
photo's grid (`common.reduced`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..common.config import read_image_processor_config
from ..common.errors import ConfigError
from ..common.reduced import reduction, source_box
from ..common.rgb import to_rgb

PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
_RESAMPLE = {0: Image.Resampling.NEAREST, 1: Image.Resampling.LANCZOS, 2: Image.Resampling.BILINEAR,
             3: Image.Resampling.BICUBIC, 4: Image.Resampling.BOX, 5: Image.Resampling.HAMMING}  # fmt: skip


@dataclass(frozen=True)
class ImageProcessor:
    """Immutable, so one instance is safe to share between decode worker threads."""

    height: int = 224
    width: int = 224
    resample: int = 3  # PIL bicubic
    rescale_factor: float = 1 / 255
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    do_resize: bool = True
    do_rescale: bool = True
    do_normalize: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageProcessor:
        size = d.get("size") or {"height": 224, "width": 224}
        if not isinstance(size, dict) or "height" not in size or "width" not in size:
            raise ConfigError(f"preprocessor size={size!r}: SigLIP expects {{'height': H, 'width': W}}")
        for key in ("height", "width"):
            if not isinstance(size[key], int) or not 8 <= size[key] <= 4096:
                raise ConfigError(
                    f"preprocessor size.{key}={size[key]!r} is outside the allowed range [8, 4096]"
                )
        resample = d.get("resample", 3)
        if resample not in _RESAMPLE:
            raise ConfigError(f"preprocessor resample={resample!r} is not a PIL filter id (0-5)")
        return cls(
            height=size["height"],
            width=size["width"],
            resample=resample,
            rescale_factor=float(d.get("rescale_factor", 1 / 255)),
            image_mean=tuple(d.get("image_mean", (0.5, 0.5, 0.5))),
            image_std=tuple(d.get("image_std", (0.5, 0.5, 0.5))),
            do_resize=bool(d.get("do_resize", True)),
            do_rescale=bool(d.get("do_rescale", True)),
            do_normalize=bool(d.get("do_normalize", True)),
        )

    @classmethod
    def from_folder(cls, path: str | Path) -> ImageProcessor:
        """Read preprocessor_config.json, or the image processor inside processor_config.json."""
        return cls.from_dict(read_image_processor_config(Path(path)))

    def __call__(self, image: Image.Image, full_size: tuple[int, int] | None = None) -> np.ndarray:
        """One PIL image -> (height, width, 3) float32.

        `full_size`: the (width, height) of the photo that `image` is a whole-factor reduction of (JPEG
        draft, `reduce`); the resize then samples `image` on the full photo's grid, as the reference does
        on the full decode. Otherwise this is transformers' processor exactly."""
        image = to_rgb(image)
        if self.do_resize:
            k = reduction(image.size, full_size)
            out = (self.width, self.height)
            box = source_box((0, 0, *out), out, full_size, k, image.size) if k > 1 and full_size else None
            image = image.resize(out, resample=_RESAMPLE[self.resample], box=box)
        x = np.asarray(image, dtype=np.float32)  # (H, W, 3) in [0, 255]
        if self.do_rescale:
            x = x * np.float32(self.rescale_factor)
        if self.do_normalize:
            x = (x - np.asarray(self.image_mean, np.float32)) / np.asarray(self.image_std, np.float32)
        return x.astype(np.float32, copy=False)
