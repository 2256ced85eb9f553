"""Retrieval and zero-shot metrics on held-out generated scenes, from embeddings alone (numpy only).

Shared by the training script, tests/test_demo_model.py and bench/demo_quality.py, so the numbers
they report are computed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.scenes import COLOURS, SHAPES, Scene, class_prompts, make_scenes

# Held-out streams: far from the training stream, which is seeded by default_rng([seed, step]).
HELDOUT_SINGLE_SEED = 900_001
HELDOUT_GALLERY_SEED = 900_002
QUERY_TEMPLATE = "{article} {colour} {shape}"


@dataclass(frozen=True)
class Quality:
    zero_shot_top1: float  # colour x shape classification of single-shape scenes
    precision_at_10: float  # mean over colour+shape queries with >= 10 relevant gallery images
    n_queries: int


def heldout_single(n: int = 560) -> list[Scene]:
    return make_scenes(HELDOUT_SINGLE_SEED, n, n_shapes=1)


def heldout_gallery(n: int = 1000) -> list[Scene]:
    return make_scenes(HELDOUT_GALLERY_SEED, n)


def single_class_index(scenes: list[Scene]) -> np.ndarray:
    """Each single-shape scene's class as a row index into `class_prompts()` order."""
    classes = list(class_prompts())
    return np.array([classes.index((s.shapes[0].colour, s.shapes[0].kind)) for s in scenes])


def zero_shot_top1(image_emb: np.ndarray, scenes: list[Scene], class_emb: np.ndarray) -> float:
    """Share of single-shape scenes whose best class prompt (rows in `class_prompts()` order) is right."""
    pred = np.argmax(image_emb @ class_emb.T, axis=1)
    return float(np.mean(pred == single_class_index(scenes)))


def precision_at_k(
    image_emb: np.ndarray, scenes: list[Scene], query_emb: np.ndarray, k: int = 10, min_relevant: int = 10
) -> tuple[float, int]:
    """Mean precision@k of colour+shape queries (rows in `class_prompts()` order) over a gallery.

    An image is relevant when it holds a shape of that colour and kind; queries with fewer than
    `min_relevant` relevant images are skipped, since they could not reach 1.0.
    """
    scores = image_emb @ query_emb.T  # (n_images, n_queries)
    precisions = []
    for q, (colour, kind) in enumerate(class_prompts()):
        relevant = np.array([s.contains(colour, kind) for s in scenes])
        if relevant.sum() < min_relevant:
            continue
        top = np.argsort(-scores[:, q], kind="stable")[:k]
        precisions.append(float(relevant[top].mean()))
    return float(np.mean(precisions)), len(precisions)


def query_texts() -> list[str]:
    return list(class_prompts(QUERY_TEMPLATE).values())


def prompt_texts() -> list[str]:
    return list(class_prompts().values())


def n_classes() -> int:
    return len(COLOURS) * len(SHAPES)


def measure(embedder, render_size: int = 96, n_single: int = 560, n_gallery: int = 1000) -> Quality:
    """Both metrics for an `app.core.backends.Embedder`, through its own preprocessing.

    Scenes are rendered at `render_size` (larger than the model input, like photos) and left to the
    embedder to resize, so the measurement covers the shipped pre-processing too.
    """
    from training.scenes import render

    def images(scenes: list[Scene]) -> np.ndarray:
        return np.concatenate(
            [
                embedder.embed_images([render(s, render_size) for s in scenes[i : i + 128]])
                for i in range(0, len(scenes), 128)
            ]
        )

    single, gallery = heldout_single(n_single), heldout_gallery(n_gallery)
    top1 = zero_shot_top1(images(single), single, embedder.embed_texts(prompt_texts()))
    p10, n = precision_at_k(images(gallery), gallery, embedder.embed_texts(query_texts()))
    return Quality(top1, p10, n)


def real_inputs(n: int = 64, render_size: int = 96) -> tuple[list, list[str]]:
    """Held-out images and captions, for comparing a model's variants on what it will really see."""
    from training.scenes import captions, render

    scenes = make_scenes(HELDOUT_GALLERY_SEED + 1, n)
    return [render(s, render_size) for s in scenes], [captions(s)[0] for s in scenes]


def blank_and_noise_images() -> list:
    """Four blank images and eight noise images: none of them shows any labelled thing (tagging must abstain).

    The same images are the weak-match rule's neutral references (app.core.weak_match).
    """
    from app.core.weak_match import neutral_images

    return neutral_images()
