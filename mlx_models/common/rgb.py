"""RGB conversion shared by the image processors, as transformers' `convert_to_rgb` does it."""

from __future__ import annotations

from PIL import Image


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as RGB; transparency is composited onto white, not dropped. An RGB image is returned
    as it is (the processors never write to it), which saves a copy of every photo."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")
