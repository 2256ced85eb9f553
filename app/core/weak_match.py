"""Is the best hit a real match? A per-query rule, calibrated per model folder.

A hit is weak when its cosine is below the model's `min_top`, or when it is not closer to the query
than to a neutral reference by at least `min_lift`: neutral prompts ("a photo", ...) for text
queries, blank and noise images for image queries. The lift is measured on the same image, so it
cancels what every query shares with that image; a query that says no more than "a photo" (an empty
prompt, words a model spells out but never learned) stays weak whatever the model's cosine scale.
A query has no strong match when its best hit is weak.

The two cuts come from generated scenes with known truth (training/weak_match.py): colour+shape
queries whose class the library holds versus classes it lacks, and single-shape query images
likewise. They are written to the model folder's config.json ("fovea"/"weak_match") when the model
is made; a folder without them keeps the family's single cosine threshold (app.core.search).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from app.core.backends import Embedder

QueryKind = Literal["text", "image"]

# Prompts that name nothing in particular: a real query must explain its best image better than these.
NEUTRAL_PROMPTS = ("a photo", "a picture", "an image", "a photo of something", "something", "a thing")


def neutral_images() -> list[Image.Image]:
    """Four blank images and eight noise images: none of them shows anything a query could name."""
    from PIL import Image

    rng = np.random.default_rng(7)
    out = [
        Image.new("RGB", (64, 64), c) for c in [(255, 255, 255), (128, 128, 128), (200, 190, 170), (0, 0, 0)]
    ]
    out += [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(4)]
    out += [
        Image.fromarray(np.clip(rng.normal(150, 25, (64, 64, 3)), 0, 255).astype(np.uint8)) for _ in range(4)
    ]
    return out


def neutral_vectors(embedder: Embedder, kind: QueryKind) -> np.ndarray:
    """(n, d) normalised embeddings of the neutral references for a query kind."""
    if kind == "text":
        return embedder.embed_texts(list(NEUTRAL_PROMPTS))
    return embedder.embed_images(neutral_images())


@dataclass(frozen=True)
class WeakMatchRule:
    min_top: float  # a hit's cosine must reach this
    min_lift: float  # ... and exceed its cosine with the closest neutral reference by this much

    def weak(self, score: np.ndarray | float, lift: np.ndarray | float) -> np.ndarray:
        """True where a hit is weak (elementwise)."""
        return (np.asarray(score) < self.min_top) | (np.asarray(lift) < self.min_lift)

    def reason(self, score: float, lift: float, kind: QueryKind) -> str | None:
        """Why a best hit of this score and lift is weak, in words; None when it is strong."""
        if score < self.min_top:
            return f"the best match scores {score:.2f}, below the {self.min_top:.2f} this model gives real matches"
        if lift < self.min_lift:
            what = "a neutral prompt such as 'a photo'" if kind == "text" else "a blank or noise image"
            return f"the best match is hardly closer to the query than to {what}"
        return None


@dataclass(frozen=True)
class WeakMatchCalibration:
    text: WeakMatchRule
    image: WeakMatchRule

    def rule(self, kind: QueryKind) -> WeakMatchRule:
        return self.text if kind == "text" else self.image

    def to_json(self) -> dict:
        return {"text": asdict(self.text), "image": asdict(self.image)}

    @classmethod
    def from_json(cls, d: dict) -> WeakMatchCalibration:
        return cls(WeakMatchRule(**d["text"]), WeakMatchRule(**d["image"]))


def lifts(hit_vectors: np.ndarray, scores: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """score - max cosine with a neutral reference, per hit; hit_vectors (m, d), neutral (n, d)."""
    if len(hit_vectors) == 0:
        return np.zeros(0, np.float32)
    return np.asarray(scores, np.float32) - (np.asarray(hit_vectors, np.float32) @ neutral.T).max(axis=1)


def calibration_for(folder: Path | None) -> WeakMatchCalibration | None:
    """config.json "fovea"/"weak_match" of a model folder, or None when it was never calibrated."""
    if folder is None:
        return None
    try:
        d = json.loads((Path(folder) / "config.json").read_text()).get("fovea", {}).get("weak_match")
        return WeakMatchCalibration.from_json(d) if isinstance(d, dict) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
