"""Is the best hit a real match? A per-query rule, calibrated per model folder.

Three tests, each a cut the model folder carries ("fovea"/"weak_match" in config.json):
- score: the best hit's cosine reaches `min_top`;
- lift: the best hit is closer to the query than to a neutral reference by `min_lift` (neutral prompts
  such as "a photo" for text, blank and noise images for image queries), so a query that says no more
  than "a photo" stays weak whatever the model's cosine scale;
- support: the model's own zero-shot labels of the top hits agree with the query, by at least
  `min_support`. The labels are the model's bundled tag vocabulary (app.core.tag_vocab), scored by a
  softmax at the model's logit scale. For a text query the query competes as one more label and the
  support is the sum of its probability over the `support_hits` best hits: about how many of them the
  query describes better than any reference label. For an image query it is the sum over those hits of
  the cosine between the query image's and the hit's label distributions. A rank-like test, not a
  cosine cut: it reads "these images are better described as X" and holds across cosine scales. An
  image query fails it only if, besides, its own best label has little text support in the library
  (`min_label_support`): the model sees nothing here that it would call what the query shows. It
  counts hits because a subject the library holds recurs in it while a confusion is usually one image,
  so a library smaller than the calibration draws reads proportionally fewer hits (`for_library`).
A query has no strong match when its best hit fails one of them.

The cuts come from generated scenes with known truth (training/weak_match.py): colour+shape queries
whose class the library holds versus classes it lacks, and single-shape query images likewise. A model
folder without them (a converted or pulled model) gets `default_rule`: the family's cosine threshold and
a conservative support cut, since no truth is at hand to calibrate it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from app.core.backends import Embedder

QueryKind = Literal["text", "image"]

# Prompts that name nothing in particular: a real query must explain its best image better than these.
NEUTRAL_PROMPTS = ("a photo", "a picture", "an image", "a photo of something", "something", "a thing")
# A reference label whose text embedding is this close to a text query says the same thing: it is left
# out of the competition, so a query never loses to its own paraphrase.
PARAPHRASE_COSINE = 0.95
# Hits whose labels are read: present subjects recur across a library, a lone confusion does not.
SUPPORT_HITS: dict[QueryKind, int] = {"text": 5, "image": 3}
# Uncalibrated folders (converted or pulled models): flag only when the top hits' labels barely agree
# with the query (text: the query wins on about a quarter of one hit at most; image: the label
# distributions are nearly orthogonal), so real matches outside the demo's scenes are not hidden.
DEFAULT_MIN_SUPPORT: dict[QueryKind, float] = {"text": 0.25, "image": 0.25}


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
class Support:
    """How far the top hits' zero-shot labels agree with the query, and the labels that say why."""

    value: float
    hit_label: str | None = None  # the reference label that best describes the best hit
    query_label: str | None = None  # image queries: the query image's own best label
    label_support: float = -np.inf  # image queries: that label's text support in the library (-inf: unread)


@dataclass(frozen=True)
class ReferenceLabels:
    """The model's tag vocabulary as normalised label vectors (L, d) and its logit scale."""

    labels: tuple[str, ...]
    vecs: np.ndarray
    scale: float

    def _probs(self, x: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Softmax over the labels (and an extra column) of the rows of x (m, d) -> (m, L[+1])."""
        z = x @ self.vecs.T
        if extra is not None:
            z = np.c_[extra, z]
        z = self.scale * (z - z.max(axis=1, keepdims=True))
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def text_support(self, query: np.ndarray, hits: np.ndarray) -> Support:
        """Sum over the hits (m, d) of P(query | hit), the query competing with the labels it does not paraphrase."""
        if len(hits) == 0:
            return Support(0.0)
        keep = self.vecs @ query < PARAPHRASE_COSINE
        refs = ReferenceLabels(tuple(np.asarray(self.labels, object)[keep]), self.vecs[keep], self.scale)
        if not keep.any():
            return Support(float(len(hits)))
        p = refs._probs(hits, extra=hits @ query)  # column 0: the query
        return Support(float(p[:, 0].sum()), refs.labels[int(np.argmax(p[0, 1:]))])

    def image_support(self, query: np.ndarray, hits: np.ndarray) -> Support:
        """Sum over the hits (m, d) of the cosine between their label distributions and the query image's."""
        if len(hits) == 0:
            return Support(0.0)
        pq = self._probs(query[None, :])[0]
        ph = self._probs(hits)
        cos = (ph @ pq) / np.maximum(np.linalg.norm(ph, axis=1) * np.linalg.norm(pq), 1e-12)
        return Support(float(cos.sum()), self.labels[int(ph[0].argmax())], self.labels[int(pq.argmax())])

    def vector(self, label: str) -> np.ndarray:
        """A label's normalised vector (d,)."""
        return self.vecs[self.labels.index(label)]

    def support(self, kind: QueryKind, query: np.ndarray, hits: np.ndarray) -> Support:
        return self.text_support(query, hits) if kind == "text" else self.image_support(query, hits)


def reference_labels(embedder: Embedder) -> ReferenceLabels | None:
    """The bundled vocabulary that suits the embedder's model, embedded once (cached on disk per model)."""
    if embedder.folder is None:
        return None
    from app.core.tag_vocab import label_embeddings, load_vocabulary, vocabulary_for_model

    m = label_embeddings(embedder, load_vocabulary(vocabulary_for_model(embedder.folder)))
    return ReferenceLabels(m.labels, np.asarray(m.vecs, np.float32), float(embedder.logit_scale))


@dataclass(frozen=True)
class WeakMatchRule:
    min_top: float  # a hit's cosine must reach this
    min_lift: float  # ... and exceed its cosine with the closest neutral reference by this much
    min_support: float | None = None  # ... and the top hits' labels must agree this much (None: not used)
    support_hits: int = 5  # how many top hits the support reads
    support_library: int = 300  # in a library of this many images (the calibration draws' size)
    # Image queries: a failed support counts only if the query image's own best label also has less
    # text support than this in the library (its `label_hits` best hits): "nothing here looks like it".
    min_label_support: float | None = None
    label_hits: int = 5

    def for_library(self, n_images: int) -> WeakMatchRule:
        """The rule for a library of n images: a smaller one holds fewer images of any subject, so the
        supports read proportionally fewer hits (at least one) against proportionally lower cuts."""
        if self.min_support is None or n_images >= self.support_library:
            return self

        def scaled(hits: int, cut: float | None) -> tuple[int, float | None]:
            n = max(1, min(hits, round(hits * n_images / self.support_library)))
            return n, None if cut is None else cut * n / hits

        hits, cut = scaled(self.support_hits, self.min_support)
        label_hits, label_cut = scaled(self.label_hits, self.min_label_support)
        return replace(
            self,
            min_support=cut,
            support_hits=hits,
            support_library=max(n_images, 1),
            min_label_support=label_cut,
            label_hits=label_hits,
        )

    def weak(
        self,
        score: np.ndarray | float,
        lift: np.ndarray | float,
        support: np.ndarray | float = np.inf,
        label_support: np.ndarray | float = -np.inf,
    ) -> np.ndarray:
        """True where a best hit is weak (elementwise)."""
        out = (np.asarray(score) < self.min_top) | (np.asarray(lift) < self.min_lift)
        if self.min_support is not None:
            unsupported = np.asarray(support) < self.min_support
            if self.min_label_support is not None:
                unsupported = unsupported & (np.asarray(label_support) < self.min_label_support)
            out = out | unsupported
        return out

    def reason(
        self, score: float, lift: float, kind: QueryKind, support: Support | None = None
    ) -> str | None:
        """Why a best hit of this score, lift and support is weak, in words; None when it is strong."""
        if score < self.min_top:
            return f"the best match scores {score:.2f}, below the {self.min_top:.2f} this model gives real matches"
        if lift < self.min_lift:
            what = "a neutral prompt such as 'a photo'" if kind == "text" else "a blank or noise image"
            return f"the best match is hardly closer to the query than to {what}"
        if support is None or not self.weak(np.inf, np.inf, support.value, support.label_support):
            return None
        if kind == "text":
            return f"the best matches are better described as '{support.hit_label}' than by the query"
        if support.hit_label != support.query_label:
            why = f"the best matches look like '{support.hit_label}', the query image like '{support.query_label}'"
        else:
            why = "the best matches get other labels than the query image"
        if self.min_label_support is not None:
            why += f", and few images here look like '{support.query_label}'"
        return why


def default_rule(min_top: float, kind: QueryKind) -> WeakMatchRule:
    """The rule of an uncalibrated model folder: its cosine threshold and the conservative support cuts."""
    label = DEFAULT_MIN_SUPPORT["text"] if kind == "image" else None
    return WeakMatchRule(
        min_top, -np.inf, DEFAULT_MIN_SUPPORT[kind], SUPPORT_HITS[kind], min_label_support=label
    )


@dataclass(frozen=True)
class WeakMatchCalibration:
    """The rules of a model folder: one pair calibrated at `text.support_library` images, and optionally
    more pairs calibrated on libraries of other sizes (`by_size`). The support tests count hits, and what
    a count means depends on how many images of a subject a library can hold, so a library gets the pair
    calibrated nearest its size (on a log scale), scaled down to it (`WeakMatchRule.for_library`)."""

    text: WeakMatchRule
    image: WeakMatchRule
    by_size: tuple[tuple[WeakMatchRule, WeakMatchRule], ...] = ()

    def rule(self, kind: QueryKind, n_images: int | None = None) -> WeakMatchRule:
        """The rule of a query kind; for a library of n images when n is given."""
        pairs = [(self.text, self.image), *self.by_size]
        if n_images is None:
            text, image = pairs[0]
        else:
            n = max(n_images, 1)
            text, image = min(pairs, key=lambda p: abs(np.log(n / max(p[0].support_library, 1))))
        chosen = text if kind == "text" else image
        return chosen if n_images is None else chosen.for_library(n_images)

    def to_json(self) -> dict:
        d: dict = {"text": asdict(self.text), "image": asdict(self.image)}
        if self.by_size:
            d["by_size"] = [{"text": asdict(t), "image": asdict(i)} for t, i in self.by_size]
        return d

    @classmethod
    def from_json(cls, d: dict) -> WeakMatchCalibration:
        sizes = tuple((WeakMatchRule(**p["text"]), WeakMatchRule(**p["image"])) for p in d.get("by_size", ()))
        return cls(WeakMatchRule(**d["text"]), WeakMatchRule(**d["image"]), sizes)


def lifts(hit_vectors: np.ndarray, scores: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """score - max cosine with a neutral reference, per hit; hit_vectors (m, d), neutral (n, d)."""
    if len(hit_vectors) == 0:
        return np.zeros(0, np.float32)
    return np.asarray(scores, np.float32) - (np.asarray(hit_vectors, np.float32) @ neutral.T).max(axis=1)


def calibration_for(folder: Path | None) -> WeakMatchCalibration | None:
    """config.json "fovea"/"weak_match" of a model folder, or None when it was never calibrated."""
    from app.core.backends.ids import model_note

    d = model_note(folder, "weak_match") if folder is not None else None
    try:
        return WeakMatchCalibration.from_json(d) if isinstance(d, dict) else None
    except (KeyError, TypeError, AttributeError):  # a malformed note: as if never calibrated
        return None
