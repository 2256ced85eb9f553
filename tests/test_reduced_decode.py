"""A photo decoded reduced (JPEG draft, as the decode workers do) is resized on the full photo's pixel grid.

The reference is transformers' Pillow processor run on the full decode. Real photos from scikit-image;
a reduced side is rounded up (741 px at 1/2 is 371), which without the full size shifts the resize and
crop by up to a pixel.
"""

from __future__ import annotations

from pathlib import Path

from mlx_models import clip, siglip
from mlx_models.common.reduced import reduction, source_box

import numpy as np
import pytest
from PIL import Image

from app.core.decode import open_image
from tests.builders.real_photos import sample_files

transformers = pytest.importorskip("transformers")

# stem -> decode side asked for: odd reductions (motorcycle 741 -> 371, retina 1411 -> 706, rocket 427 -> 214)
# and exact ones (astronaut 512 -> 256, hubble 1000x872 -> 500x436).
ODD = {"motorcycle_left": 224, "retina": 448, "rocket": 200}
EXACT = {"astronaut": 224, "hubble_deep_field": 224}


def processors(family: str):
    """(ours, transformers') at the family's ViT-B defaults (224 px)."""
    if family == "clip":
        return clip.ImageProcessor(), transformers.CLIPImageProcessorPil()
    return siglip.ImageProcessor(), transformers.SiglipImageProcessorPil()


def jpeg(folder: Path, stem: str) -> Path:
    src = {p.stem: p for p in sample_files()}[stem]
    path = folder / f"{stem}.jpg"
    Image.open(src).convert("RGB").save(path, quality=90)
    return path


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_a_draft_decoded_photo_is_resized_where_the_full_photo_would_be(tmp_path, family):
    ours, hf = processors(family)
    errors = {}
    for stem, side in (ODD | EXACT).items():
        path = jpeg(tmp_path, stem)
        with Image.open(path) as f:
            ref = hf(images=[f.convert("RGB")], return_tensors="np")["pixel_values"][0].transpose(1, 2, 0)
        d = open_image(path, min_side=side)
        assert reduction(d.image.size, (d.width, d.height)) == 2, (stem, d.image.size)  # decoded at 1/2
        plain = np.abs(ours(d.image) - ref).mean()
        on_grid = np.abs(ours(d.image, (d.width, d.height)) - ref).mean()
        errors[stem] = plain, on_grid
    for stem in EXACT:  # a whole division: the same grid either way
        assert errors[stem][1] == pytest.approx(errors[stem][0], rel=0.02), (stem, errors)
    for stem in ODD:  # measured 1.6x-4.7x closer to the reference
        assert errors[stem][1] < errors[stem][0] / 1.5, (stem, errors)


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_without_a_whole_reduction_the_processor_is_exactly_the_reference_path(family):
    ours, _ = processors(family)
    rgb = np.random.default_rng(1).integers(0, 256, (301, 457, 3), dtype=np.uint8)
    im = Image.fromarray(rgb)
    plain = ours(im)
    for full in (None, (457, 301), (914, 605), (1000, 700), (1371, 904)):  # heights or widths disagree
        np.testing.assert_array_equal(ours(im, full), plain, err_msg=str(full))


def test_reduction_matches_how_libjpeg_and_pillow_round_a_reduced_side():
    assert reduction((371, 250), (741, 500)) == 2
    assert reduction((1000, 750), (4000, 3000)) == 4
    assert reduction((247, 167), (741, 501)) == 3  # Pillow's reduce(3): ceil on both sides
    assert reduction((371, 250), (741, 503)) == 1  # the heights disagree
    assert reduction((400, 300), (400, 300)) == 1
    assert reduction((400, 300), None) == 1
    # The box stays inside the reduced image, even where the full side divides exactly.
    box = source_box((0, 0, 224, 224), (224, 224), (4000, 3000), 4, (1000, 750))
    assert box == (0.0, 0.0, 1000.0, 750.0)


def test_the_crop_box_covers_the_center_crop_of_the_full_photos_resize():
    """CLIP: 741x500 -> resize to 331x224 -> crop at x=53; in the 1/2 reduction that is x from 53*741/331/2."""
    proc = clip.ImageProcessor()
    assert proc.resized_hw(500, 741) == (224, 331)
    left, right = 53 * 741 / 331 / 2, 277 * 741 / 331 / 2
    box = source_box((53, 0, 277, 224), (331, 224), (741, 500), 2, (371, 250))
    assert box == pytest.approx((left, 0.0, right, 250.0))
