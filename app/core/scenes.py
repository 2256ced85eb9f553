"""Captioned synthetic scenes: one to three coloured shapes on a textured background.

Everything is a pure function of a seed, so training, tests, benchmarks and the demo library
can regenerate the same images and captions anywhere without shipping a data set. The app draws its
demo library with this module; the training-only parts (prompts, caption truths, the tokenizer
corpus) live in `training.scenes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star", "ring", "cross", "diamond")
# Saturated hues far from the neutral backgrounds, so colour is never confused with the ground.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 135, 15),
    "yellow": (240, 215, 30),
    "green": (35, 160, 55),
    "blue": (35, 75, 215),
    "purple": (135, 55, 185),
    "pink": (245, 125, 195),
    "black": (25, 25, 25),
}
BACKGROUNDS = ("plain", "striped", "checkered", "dotted", "gradient")
SIZES: dict[str, tuple[float, float]] = {  # radius as a fraction of the image side
    "small": (0.11, 0.14),
    "medium": (0.15, 0.18),
    "large": (0.2, 0.25),
}
NUMBERS = {1: "one", 2: "two", 3: "three"}
_SUPERSAMPLE = 4  # draw 4x larger and box-downsample: anti-aliased edges like a real photo's


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    size: str
    cx: float  # centre, as fractions of the image side (0 = left / top)
    cy: float
    radius: float
    angle: float  # degrees of in-plane rotation jitter


@dataclass(frozen=True)
class Scene:
    shapes: tuple[Shape, ...]
    background: str
    ground: tuple[tuple[int, int, int], tuple[int, int, int]]  # two neutral tones the texture uses
    noise: float  # std of the additive pixel noise, in 0..255 units
    seed: int  # drives the noise field, so rendering is deterministic too

    def contains(self, colour: str, kind: str) -> bool:
        return any(s.colour == colour and s.kind == kind for s in self.shapes)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def plural(kind: str) -> str:
    return kind + ("es" if kind.endswith("s") else "s")


def _neutral(rng: np.random.Generator) -> tuple[int, int, int]:
    g = int(rng.integers(110, 235))
    warm = int(rng.integers(-8, 12))  # a touch of beige now and then
    return (min(255, g + warm), g, max(0, g - warm))


def sample_scene(rng: np.random.Generator, n_shapes: int | None = None) -> Scene:
    """Draw a random scene; shapes overlap a little at most (light occlusion).

    `n_shapes=0` draws an empty ground (training's "nothing here" examples) whose tones span the
    whole grey range, near-black and near-white included, with up to heavy noise.
    """
    if n_shapes == 0:
        return _empty_scene(rng)
    n = int(n_shapes if n_shapes is not None else rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    size_names = list(SIZES) if n == 1 else ["small", "medium"] if n == 3 else list(SIZES)
    shapes: list[Shape] = []
    # Repeated (colour, shape) pairs make counting captions such as "two red circles" possible.
    repeat = n > 1 and rng.random() < 0.25
    while len(shapes) < n:
        if repeat and shapes and len(shapes) == 1:
            kind, colour = shapes[0].kind, shapes[0].colour
        else:
            kind, colour = str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS)))
        size = str(rng.choice(size_names))
        r = float(rng.uniform(*SIZES[size]))
        for _ in range(50):
            cx, cy = (float(v) for v in rng.uniform(r + 0.02, 0.98 - r, size=2))
            if all(math.hypot(cx - s.cx, cy - s.cy) > 0.85 * (r + s.radius) for s in shapes):
                break
        else:
            size, r = "small", float(rng.uniform(*SIZES["small"]))
            cx, cy = (float(v) for v in rng.uniform(r + 0.02, 0.98 - r, size=2))
        shapes.append(Shape(kind, colour, size, cx, cy, r, float(rng.uniform(-12, 12))))
    a, b = _neutral(rng), _neutral(rng)
    return Scene(
        shapes=tuple(shapes),
        background=str(rng.choice(BACKGROUNDS)),
        ground=(a, b),
        noise=float(rng.uniform(0, 8)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def _empty_scene(rng: np.random.Generator) -> Scene:
    def tone() -> tuple[int, int, int]:
        if rng.random() < 0.5:
            return _neutral(rng)
        g = int(rng.integers(0, 256))
        return (g, g, g)

    return Scene(
        shapes=(),
        background=str(rng.choice(BACKGROUNDS)),
        ground=(tone(), tone()),
        noise=float(rng.choice([rng.uniform(0, 8), rng.uniform(8, 60)])),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "square":
        h = r * 0.8
        pts = [(-h, -h), (h, -h), (h, h), (-h, h)]
    elif kind == "triangle":
        pts = [
            (r * math.cos(t), r * math.sin(t)) for t in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))
        ]
        pts = [(x, y + 0.15 * r) for x, y in pts]
    elif kind == "star":
        pts = []
        for k in range(10):
            t = -math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else r * 0.42
            pts.append((rr * math.cos(t), rr * math.sin(t)))
    elif kind == "cross":
        w = r * 0.34
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]  # fmt: skip
    elif kind == "diamond":  # a rhombus taller than wide, so it never reads as a turned square
        pts = [(0.0, -r), (r * 0.62, 0.0), (0.0, r), (-r * 0.62, 0.0)]
    else:
        raise ValueError(f"not a polygon shape: {kind}")
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def _background(scene: Scene, side: int) -> Image.Image:
    a, b = scene.ground
    img = Image.new("RGB", (side, side), a)
    d = ImageDraw.Draw(img)
    step = side // 8
    if scene.background == "striped":
        for x in range(-side, side, step):
            d.polygon([(x, 0), (x + step // 2, 0), (x + step // 2 + side, side), (x + side, side)], fill=b)
    elif scene.background == "checkered":
        for i in range(8):
            for j in range(8):
                if (i + j) % 2:
                    d.rectangle([i * step, j * step, (i + 1) * step - 1, (j + 1) * step - 1], fill=b)
    elif scene.background == "dotted":
        for i in range(8):
            for j in range(8):
                x, y, rr = (i + 0.5) * step, (j + 0.5) * step, step * 0.15
                d.ellipse([x - rr, y - rr, x + rr, y + rr], fill=b)
    elif scene.background == "gradient":
        t = np.linspace(0.0, 1.0, side, dtype=np.float32)[:, None, None]  # (side, 1, 1), top to bottom
        rows = (1 - t) * np.array(a, np.float32) + t * np.array(b, np.float32)
        img = Image.fromarray(np.broadcast_to(rows, (side, side, 3)).astype(np.uint8))
    return img


def render(scene: Scene, size: int = 64) -> Image.Image:
    """The scene as a `size` x `size` RGB image (noise is seeded by the scene)."""
    side = size * _SUPERSAMPLE
    img = _background(scene, side)
    d = ImageDraw.Draw(img)
    for s in scene.shapes:
        cx, cy, r = s.cx * side, s.cy * side, s.radius * side
        fill = COLOURS[s.colour]
        if s.kind == "circle":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        elif s.kind == "ring":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=max(1, int(r * 0.38)))
        else:
            d.polygon(_polygon(s.kind, cx, cy, r, s.angle), fill=fill)
    img = img.reduce(_SUPERSAMPLE)
    if scene.noise > 0:
        noise = np.random.default_rng(scene.seed).normal(0.0, scene.noise, (size, size, 3))
        img = Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))
    return img


def _where(s: Shape) -> str:
    dx, dy = s.cx - 0.5, s.cy - 0.5
    if max(abs(dx), abs(dy)) < 0.12:
        return "in the center"
    if abs(dx) >= abs(dy):
        return "on the left" if dx < 0 else "on the right"
    return "at the top" if dy < 0 else "at the bottom"


def object_groups(scene: Scene) -> list[tuple[str, list[Shape]]]:
    """Shapes grouped by (colour, kind), each with its noun phrase ("a red circle", "two red circles")."""
    order: dict[tuple[str, str], list[Shape]] = {}
    for s in scene.shapes:
        order.setdefault((s.colour, s.kind), []).append(s)
    out = []
    for (colour, kind), members in order.items():
        if len(members) == 1:
            phrase = f"{article(colour)} {colour} {kind}"
        else:
            phrase = f"{NUMBERS[len(members)]} {colour} {plural(kind)}"
        out.append((phrase, members))
    return out


def _relation(a: list[Shape], b: list[Shape]) -> str:
    ax, ay = np.mean([s.cx for s in a]), np.mean([s.cy for s in a])
    bx, by = np.mean([s.cx for s in b]), np.mean([s.cy for s in b])
    if abs(ax - bx) >= abs(ay - by):
        return "left of" if ax < bx else "right of"
    return "above" if ay < by else "below"


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def captions(scene: Scene) -> list[str]:
    """Several true natural-language descriptions of the scene, most specific last."""
    if not scene.shapes:
        bg = f"{article(scene.background)} {scene.background} background"
        return [bg, f"a photo of {bg}", f"an empty {scene.background} background"]
    groups = object_groups(scene)
    phrases = [p for p, _ in groups]
    bg = f"on {article(scene.background)} {scene.background} background"
    out = [_join(phrases), f"a photo of {_join(phrases)}", f"{_join(phrases)} {bg}"]
    if len(scene.shapes) == 1:
        s = scene.shapes[0]
        out += [
            f"{article(s.size)} {s.size} {s.colour} {s.kind}",
            f"{article(s.colour)} {s.colour} {s.kind} {_where(s)}",
        ]
    elif len(groups) == 2:
        (pa, a), (pb, b) = groups
        rel = _relation(a, b)
        out.append(f"{pa} {rel} {pb}")
        out.append(f"{pa} beside {pb}" if rel in ("left of", "right of") else f"{pa} {rel} {pb} {bg}")
    else:
        out.append(_join(list(reversed(phrases))))
        out.append(f"{NUMBERS[len(scene.shapes)]} shapes: {_join(phrases)}")
    if len(groups) > 1:  # a partial description: retrieval queries name one object of a busy scene
        out.append(f"a scene with {phrases[0]}")
    return out


def make_scenes(seed: int, n: int, n_shapes: int | None = None) -> list[Scene]:
    """`n` scenes drawn from one seed: the same seed always gives the same list."""
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, n_shapes) for _ in range(n)]
