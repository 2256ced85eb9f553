"""A small library of real photographs (scikit-image's and matplotlib's bundled sample images) plus the
awkward cases a real library has: an exact copy, a resized near copy, a very wide panorama, a tall crop,
a tiny GIF and a file that is not an image. Used by the GUI tests, the GUI bench and the screenshots."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

SKIMAGE = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
    "camera.png", "coins.png", "moon.png", "retina.jpg", "ihc.png", "brick.png", "grass.png", "gravel.png",
    "page.png", "horse.png", "color.png", "no_time_for_that_tiny.gif",
)  # fmt: skip
MATPLOTLIB = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")


def sample_files() -> list[Path]:
    """The bundled sample images that exist in the installed packages (scikit-image, matplotlib)."""
    import matplotlib
    import skimage

    sk = Path(skimage.__file__).parent / "data"
    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    return [p for p in [sk / n for n in SKIMAGE] + [mpl / n for n in MATPLOTLIB] if p.is_file()]


def write_real_photos(folder: Path) -> dict[str, Path]:
    """Copy the samples into `folder` (photos as JPEG, like a camera's) and add the awkward cases.

    Returns named paths: 'exact_a'/'exact_b' (byte-identical), 'near_a'/'near_b' (the same photo resized),
    'wide', 'tall', 'tiny', 'not_image', and every copied sample by its stem."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for src in sample_files():
        if src.suffix == ".gif":
            dst = folder / src.name
            shutil.copyfile(src, dst)
            out["tiny"] = dst
            continue
        img = Image.open(src)
        img = img.convert("RGB") if img.mode not in ("RGB", "L") else img
        dst = folder / f"{src.stem}.jpg"
        img.save(dst, quality=90)
        out[src.stem] = dst
    if "chelsea" in out:
        out["exact_a"] = out["chelsea"]
        out["exact_b"] = folder / "chelsea copy.jpg"
        shutil.copyfile(out["chelsea"], out["exact_b"])
    if "coffee" in out:
        out["near_a"] = out["coffee"]
        with Image.open(out["coffee"]) as im:
            im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS).save(
                folder / "coffee (small).jpg", quality=80
            )
        out["near_b"] = folder / "coffee (small).jpg"
    if "rocket" in out and "astronaut" in out:
        with Image.open(out["rocket"]) as a, Image.open(out["astronaut"]) as b:
            h = 240
            parts = [im.resize((round(im.width * h / im.height), h)) for im in (a, b, a, b)]
            wide = Image.new("RGB", (sum(p.width for p in parts), h))
            x = 0
            for p in parts:
                wide.paste(p, (x, 0))
                x += p.width
            wide.save(folder / "panorama.jpg", quality=88)  # about 6:1
            out["wide"] = folder / "panorama.jpg"
            b.crop((180, 0, 330, 512)).save(folder / "astronaut tall crop.jpg", quality=90)
            out["tall"] = folder / "astronaut tall crop.jpg"
    (folder / "notes.heic").write_bytes(b"not really an image")
    out["not_image"] = folder / "notes.heic"
    return out
