"""Real photographs shipped by scikit-image and matplotlib: a small library with the awkward cases a real
library has (used by the GUI tests, the GUI bench and the screenshots), and the same photos written at test
time in every format Fovea reads, including a DNG built with pidng from a Bayer mosaic (the format tests)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
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


FORMAT_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle_left", "grace_hopper")


def real_photos() -> dict[str, Image.Image]:
    """stem -> RGB photo, for the format tests: five of scikit-image's and matplotlib's grace_hopper."""
    by_stem = {p.stem: p for p in sample_files()}
    return {n: Image.open(by_stem[n]).convert("RGB") for n in FORMAT_PHOTOS}


FORMAT_EXTS = (".heic", ".avif", ".jp2", ".mpo", ".apng", ".webp", ".tif", ".jxl", ".dng")


def write_formats(
    folder: Path, im: Image.Image, stem: str, exts: tuple[str, ...] = FORMAT_EXTS
) -> dict[str, Path]:
    """`im` saved as HEIC, AVIF, JPEG 2000, MPO, APNG, WebP, multipage TIFF, JPEG XL and DNG: ext -> path."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    folder.mkdir(parents=True, exist_ok=True)
    small = im.resize((im.width // 2, im.height // 2))
    paths = {}

    def save(ext: str, fmt: str, **kw) -> None:
        if ext not in exts:
            return
        p = folder / f"{stem}{ext}"
        im.copy().save(p, fmt, **kw)  # a copy: Pillow keeps encoder settings on the saved image
        paths[ext] = p

    save(".heic", "HEIF", quality=90)
    save(".avif", "AVIF", quality=90)
    save(".jp2", "JPEG2000", quality_mode="dB", quality_layers=[45])
    save(".mpo", "MPO", save_all=True, append_images=[small.copy()], quality=92)
    save(".apng", "PNG", save_all=True, append_images=[small.resize(im.size)], duration=100)
    save(".webp", "WEBP", quality=90)
    save(".tif", "TIFF", save_all=True, append_images=[small.copy()])
    try:
        import pillow_jxl  # noqa: F401

        save(".jxl", "JXL", quality=90)
    except ImportError:
        pass
    if ".dng" in exts:
        paths[".dng"] = write_dng(folder / f"{stem}.dng", im)
    return paths


def write_dng(
    path: Path, im: Image.Image, model: str = "Fovea Bayer", taken: str = "2021:06:05 14:03:02"
) -> Path:
    """An uncompressed 12-bit RGGB DNG of `im` (linear light), with camera model and date tags."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import (
        CalibrationIlluminant,
        CFAPattern,
        DNGVersion,
        Orientation,
        PhotometricInterpretation,
        PreviewColorSpace,
    )

    rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    lin = (rgb[:h, :w].astype(np.float32) / 255) ** 2.2 * 4095  # sRGB-ish to linear 12-bit
    bayer = np.empty((h, w), np.uint16)
    bayer[0::2, 0::2] = lin[0::2, 0::2, 0]  # R
    bayer[0::2, 1::2] = lin[0::2, 1::2, 1]  # G
    bayer[1::2, 0::2] = lin[1::2, 0::2, 1]  # G
    bayer[1::2, 1::2] = lin[1::2, 1::2, 2]  # B
    t = DNGTags()
    for tag, value in [
        (Tag.ImageWidth, w),
        (Tag.ImageLength, h),
        (Tag.TileWidth, w),
        (Tag.TileLength, h),
        (Tag.Orientation, Orientation.Horizontal),
        (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
        (Tag.SamplesPerPixel, 1),
        (Tag.BitsPerSample, 16),
        (Tag.CFARepeatPatternDim, [2, 2]),
        (Tag.CFAPattern, CFAPattern.RGGB),
        (Tag.BlackLevel, 0),
        (Tag.WhiteLevel, 4095),
        # XYZ -> camera: the camera is linear sRGB, so the matrix is sRGB's XYZ -> RGB (x 10000).
        (
            Tag.ColorMatrix1,
            [[v, 10000] for v in (32406, -15372, -4986, -9689, 18758, 415, 557, -2040, 10570)],
        ),
        (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65),
        (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
        (Tag.BaselineExposure, [[0, 1]]),
        (Tag.Make, "Fovea"),
        (Tag.Model, model),
        (Tag.DateTime, taken),
        (Tag.DNGVersion, DNGVersion.V1_4),
        (Tag.DNGBackwardVersion, DNGVersion.V1_2),
        (Tag.PreviewColorSpace, PreviewColorSpace.sRGB),
    ]:
        t.set(tag, value)
    r = RAW2DNG()
    r.options(t, path="", compress=False)
    r.convert(bayer, filename=str(path.with_suffix("")))
    return path


def sha256s(folder: Path) -> dict[str, str]:
    """Full-content hashes of every file below `folder` (to prove indexing never writes an original)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
