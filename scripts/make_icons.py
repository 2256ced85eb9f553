"""Render Fovea's app icon (an eye whose iris is a camera aperture) with Pillow.

Writes resources/icons/fovea.png (1024x1024) and resources/icons/fovea.icns (every macOS size,
16-512 pt at @1x and @2x, written by buildkit/icns.py, so this runs on Linux too). Usage: python scripts/make_icons.py [OUT_DIR]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from buildkit.icns import icns_bytes  # noqa: E402

SIZE = 1024
SCALE = 2  # draw at 2x and downsample: Pillow's primitives are not anti-aliased
BLADES = 6


def _polar(cx: float, cy: float, r: float, deg: float) -> tuple[float, float]:
    a = math.radians(deg)
    return cx + r * math.cos(a), cy + r * math.sin(a)


def _vertical_gradient(size: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    col = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / (size - 1)
        col.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return col.resize((size, size))


def render(size: int = SIZE) -> Image.Image:
    """The icon as an RGBA image of `size` x `size`."""
    s = size * SCALE
    c = s / 2
    # macOS icons keep ~10% transparent margin around a rounded square.
    margin, radius = s * 0.1, s * 0.18
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle([margin, margin, s - margin, s - margin], radius, fill=255)
    icon = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    icon.paste(_vertical_gradient(s, (28, 36, 58), (10, 14, 24)), (0, 0), mask)

    # The eye: the lens shape where two large circles overlap.
    rr, off = s * 0.44, s * 0.24
    up, down = Image.new("L", (s, s), 0), Image.new("L", (s, s), 0)
    ImageDraw.Draw(up).ellipse([c - rr, c - rr + off, c + rr, c + rr + off], fill=255)
    ImageDraw.Draw(down).ellipse([c - rr, c - rr - off, c + rr, c + rr - off], fill=255)
    eye = ImageChops.multiply(ImageChops.multiply(up, down), mask)
    icon.paste((236, 240, 246, 255), (0, 0), eye)

    # The iris is an aperture: BLADES overlapping blades leave a hexagonal pupil open.
    d = ImageDraw.Draw(icon)
    r_iris, r_pupil = s * 0.16, s * 0.06
    d.ellipse([c - r_iris * 1.06] * 2 + [c + r_iris * 1.06] * 2, fill=(12, 70, 90, 255))
    shades = [(22, 150, 170), (16, 120, 150)]
    for k in range(BLADES):
        a = k * 360 / BLADES
        pts = [
            _polar(c, c, r_pupil, a),
            _polar(c, c, r_iris, a - 12),
            _polar(c, c, r_iris, a + 48),
            _polar(c, c, r_pupil, a + 360 / BLADES),
        ]
        d.polygon(pts, fill=shades[k % 2] + (255,))
    d.polygon([_polar(c, c, r_pupil, k * 360 / BLADES) for k in range(BLADES)], fill=(6, 8, 14, 255))
    # Catch-light: the small reflection that makes the eye read as an eye.
    hx, hy = _polar(c, c, r_iris * 0.55, -135)
    glint = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    ImageDraw.Draw(glint).ellipse(
        [hx - s * 0.03, hy - s * 0.03, hx + s * 0.03, hy + s * 0.03], fill=(255, 255, 255, 220)
    )
    icon = Image.alpha_composite(icon, glint.filter(ImageFilter.GaussianBlur(s * 0.004)))
    return icon.resize((size, size), Image.Resampling.LANCZOS)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "resources" / "icons"
    out.mkdir(parents=True, exist_ok=True)
    img = render()
    img.save(out / "fovea.png")
    (out / "fovea.icns").write_bytes(icns_bytes(img))
    print(f"wrote {out / 'fovea.png'} and {out / 'fovea.icns'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
