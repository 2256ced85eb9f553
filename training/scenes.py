"""The training-only side of the synthetic scenes: zero-shot prompts, caption truths, the tokenizer corpus.

The scenes themselves (sampling, rendering, captions) are in `app.core.scenes`, which the app needs at
run time to draw the demo library; they are re-exported here for the training code.
"""

from __future__ import annotations

import numpy as np

from app.core.scenes import (
    BACKGROUNDS,
    COLOURS,
    NUMBERS,
    SHAPES,
    SIZES,
    Scene,
    Shape,
    article,
    captions,
    make_scenes,
    object_groups,
    plural,
    render,
    sample_scene,
)

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "NUMBERS",
    "SHAPES",
    "SIZES",
    "Scene",
    "Shape",
    "background_prompts",
    "captions",
    "class_prompts",
    "make_scenes",
    "render",
    "sample_scene",
    "truths",
    "vocabulary_corpus",
]


def truths(scene: Scene) -> frozenset[str]:
    """Every caption string true of the scene: its own captions and "a scene with X" for each object group.

    Training uses it to find every image in a batch that another image's caption also describes.
    """
    partial = {f"a scene with {p}" for p, _ in object_groups(scene)} if scene.shapes else set()
    return frozenset(captions(scene)) | partial


def background_prompts(template: str = "a photo of {article} {colour} {shape}") -> dict[str, str]:
    """One prompt per background texture for an empty ground, in a class-prompt template's words."""
    return {b: template.format(article=article(b), colour=b, shape="background") for b in BACKGROUNDS}


def class_prompts(template: str = "a photo of {article} {colour} {shape}") -> dict[tuple[str, str], str]:
    """One zero-shot prompt per (colour, shape) class."""
    return {(c, k): template.format(article=article(c), colour=c, shape=k) for c in COLOURS for k in SHAPES}


def vocabulary_corpus() -> list[str]:
    """Every word the captions and prompts can use, in caption-like lines (tokenizer training corpus)."""
    lines = list(class_prompts().values())
    words = list(COLOURS) + list(SHAPES) + [plural(k) for k in SHAPES] + list(SIZES) + list(BACKGROUNDS)
    words += list(NUMBERS.values()) + ["a", "an", "and", "on", "the", "of", "in", "at", "photo", "background"]
    words += "left right top bottom center above below beside shapes scene with empty".split()
    lines.append(" ".join(words))
    rng = np.random.default_rng(12345)
    for scene in [sample_scene(rng) for _ in range(2000)]:
        lines += captions(scene)
    lines += [c for scene in [sample_scene(rng, 0) for _ in range(20)] for c in captions(scene)]
    return lines
