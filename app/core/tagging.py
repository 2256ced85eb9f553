"""Zero-shot tagging that abstains: scores, the decision rule, and the tagging job.

A label is applied (`auto`) only when its score reaches `min_score` AND leads its best competitor by
`min_margin`; a plausible but unclear image goes to the review queue (`review`) with its top
candidates; an image whose best label does not beat the background pseudo-label gets no tag.
CLIP scores are a softmax over the labels plus the background; SigLIP scores are independent sigmoids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from app.core import tag_store
from app.core.contracts import DEFAULT_MIN_MARGIN, DEFAULT_MIN_SCORE
from app.core.errors import UsageError
from app.core.tag_vocab import LabelMatrix, Vocabulary, label_embeddings

if TYPE_CHECKING:
    from pathlib import Path

    from app.core.backends import Embedder
    from app.core.contracts import JobProgress
    from app.core.store import Store

# Review candidates below this score are noise, not candidates (a softmax over L labels averages 1/L).
DEFAULT_REVIEW_FLOOR = 0.10
# An image's best-label cosine must reach this share of the library's median best-label cosine. The
# background label catches blank images; this catches inputs unlike anything the model was trained on
# (uniform noise: best cosine 0.08-0.31 against a median of 0.83 on an early demo model, yet it won the
# softmax with 0.79, while the background label, never trained on noise, scored near 0).
DEFAULT_COSINE_FRACTION = 0.6
COSINE_SAMPLE = 2048  # rows that estimate the library's median
TOP_K = 3  # candidates kept per image for the review queue
CHUNK = 512  # rows per scoring pass: a (512, L) float32 block stays in cache across the softmax passes
DROP, REVIEW, AUTO = 0, 1, 2  # per-candidate states in `Decisions.state`


@dataclass(frozen=True)
class Thresholds:
    """Global rule plus per-label overrides (label -> (min_score, min_margin)) fitted by calibration."""

    min_score: float = DEFAULT_MIN_SCORE
    min_margin: float = DEFAULT_MIN_MARGIN
    review_floor: float = DEFAULT_REVIEW_FLOOR
    min_cosine: float = -1.0  # absolute; tag_library sets it from the library (see `cosine_floor`)
    per_label: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("min_score", "min_margin", "review_floor", "min_cosine"):
            v = getattr(self, name)
            if not (-1.0 if name == "min_cosine" else 0.0) <= v <= 1.0:
                raise UsageError(f"{name} must be in [0, 1], got {v}")

    def arrays(self, labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(min_score (L,), min_margin (L,)) in label order."""
        pairs = [self.per_label.get(lb, (self.min_score, self.min_margin)) for lb in labels]
        arr = np.asarray(pairs, np.float32).reshape(len(labels), 2)
        return arr[:, 0].copy(), arr[:, 1].copy()


@dataclass(frozen=True)
class Decisions:
    """Per image, the top candidates best first: label index, score, competitor score and state."""

    label: np.ndarray  # int64 (n, k), index into the label list
    score: np.ndarray  # float32 (n, k)
    competitor: np.ndarray  # float32 (n, k): best score the candidate must lead (other label or background)
    state: np.ndarray  # int8 (n, k): DROP, REVIEW or AUTO
    none: np.ndarray  # float32 (n,): the background pseudo-label's score
    cosine: np.ndarray | None = None  # float32 (n, k): raw image-label cosines, when computed from embeddings


class Scorer:
    """Scores normalised image embeddings against a label matrix in the model's own calibration."""

    def __init__(self, labels: LabelMatrix, model_type: str, logit_scale: float, logit_bias: float | None):
        if model_type not in ("clip", "siglip"):
            raise UsageError(f"cannot score labels for model_type {model_type!r}")
        self.labels = labels
        self.multi_label = model_type == "siglip"
        self.logit_scale = float(logit_scale)
        self.logit_bias = float(logit_bias or 0.0)
        # (d, L + 1): labels then the background column, contiguous for one BLAS call per block
        self._mat = np.ascontiguousarray(np.vstack([labels.vecs, labels.none[None]]).T, dtype=np.float32)
        gnames = sorted(set(labels.groups))
        self._group_of = np.asarray([gnames.index(g) for g in labels.groups], np.int64)
        self._group_cols = [np.flatnonzero(self._group_of == g) for g in range(len(gnames))]
        self._th_cache: tuple[Thresholds, np.ndarray, np.ndarray] | None = None

    @classmethod
    def for_embedder(cls, embedder: Embedder, labels: LabelMatrix) -> Scorer:
        return cls(labels, embedder.model_type, embedder.logit_scale, embedder.logit_bias)

    def _logits(self, emb: np.ndarray, row_scale: np.ndarray | None) -> np.ndarray:
        """(n, d) -> (n, L + 1) logits; scales are folded into the (n, d) rows, a pass 2x narrower than (n, L)."""
        x = np.array(emb, dtype=np.float32)  # a copy: int8 rows become float32 here
        if row_scale is None:
            x *= self.logit_scale
        else:
            x *= (self.logit_scale * np.asarray(row_scale, np.float32))[:, None]
        return x @ self._mat

    def scores(self, emb: np.ndarray, row_scale: np.ndarray | None = None) -> np.ndarray:
        """(n, d) normalised (or int8 with `row_scale`) -> (n, L + 1) scores; the last column is the background."""
        x = self._logits(emb, row_scale)
        if self.multi_label:
            x += self.logit_bias
            np.negative(x, out=x)
            np.exp(x, out=x)
            x += 1.0
            np.reciprocal(x, out=x)  # sigmoid, in place
        else:
            x -= x.max(axis=1, keepdims=True)
            np.exp(x, out=x)
            x /= x.sum(axis=1, keepdims=True)
        return x

    def decide(
        self, emb: np.ndarray, thresholds: Thresholds, row_scale: np.ndarray | None = None, k: int = TOP_K
    ) -> Decisions:
        """Apply the decision rule to a block of embeddings (int8 rows with `row_scale`, or normalised floats)."""
        if self.multi_label:
            d = self.decide_scores(self.scores(emb, row_scale), thresholds, k)
            x = np.asarray(emb, np.float32) * (1.0 if row_scale is None else np.asarray(row_scale)[:, None])
            cos = np.einsum("nd,nkd->nk", x, self.labels.vecs[d.label])  # (n, k) candidates only
            return self._apply_rule(d.label, d.score, d.competitor, d.none, thresholds, cos)
        parts = [
            self._decide_softmax(
                emb[s : s + CHUNK], None if row_scale is None else row_scale[s : s + CHUNK], k
            )
            for s in range(0, len(emb), CHUNK)
        ] or [self._decide_softmax(emb, row_scale, k)]
        idx, val, none, cos = (np.concatenate([p[i] for p in parts]) for i in range(4))
        return self._apply_rule(idx, val, self._softmax_competitor(val, none), none, thresholds, cos)

    def _decide_softmax(
        self, emb: np.ndarray, row_scale: np.ndarray | None, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Top-k labels, their softmax probabilities and cosines, without materialising the probability matrix.

        The fast path of `decide_scores(scores(...))`: k argmax passes on the logits, one exp pass for
        the partition function, and probabilities only for the k candidates and the background.
        """
        x = self._logits(emb, row_scale)  # (n, L + 1)
        real = x[:, :-1]
        n, k = len(x), min(k, real.shape[1])
        rows = np.arange(n)
        idx = np.empty((n, k), np.int64)
        top = np.empty((n, k), np.float32)
        for j in range(k):
            a = real.argmax(axis=1)
            idx[:, j], top[:, j] = a, real[rows, a]
            real[rows, a] = -np.inf
        real[rows[:, None], idx] = top  # put the candidates back for the partition function
        none = x[:, -1].copy()
        m = np.maximum(top[:, 0], none) if k else none
        x -= m[:, None]
        np.exp(x, out=x)
        z = x.sum(axis=1)
        val = np.exp(top - m[:, None]) / z[:, None]
        cos = top / self.logit_scale  # the logits are scaled cosines
        return idx, val.astype(np.float32), (np.exp(none - m) / z).astype(np.float32), cos

    def decide_scores(self, s: np.ndarray, thresholds: Thresholds, k: int = TOP_K) -> Decisions:
        """The decision rule on (n, L + 1) scores from `scores` (background last)."""
        n_labels = s.shape[1] - 1
        k = min(k, n_labels)
        none = s[:, -1].copy()
        real = s[:, :-1]
        idx = np.argpartition(real, n_labels - k, axis=1)[:, n_labels - k :]  # (n, k) unordered top k
        val = np.take_along_axis(real, idx, axis=1)
        order = np.argsort(-val, axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        val = np.take_along_axis(val, order, axis=1)
        if self.multi_label:
            comp = np.maximum(self._group_competitor(real, idx), none[:, None])
        else:
            comp = self._softmax_competitor(val, none)
        return self._apply_rule(idx, val, comp, none, thresholds)

    @staticmethod
    def _softmax_competitor(val: np.ndarray, none: np.ndarray) -> np.ndarray:
        """One softmax: every candidate competes with the best other column, label or background."""
        comp = np.empty_like(val)
        comp[:, 0] = val[:, 1] if val.shape[1] > 1 else 0.0
        comp[:, 1:] = val[:, :1]
        return np.maximum(comp, none[:, None], out=comp)

    def _apply_rule(
        self,
        idx: np.ndarray,
        val: np.ndarray,
        comp: np.ndarray,
        none: np.ndarray,
        thresholds: Thresholds,
        cos: np.ndarray | None = None,
    ) -> Decisions:
        ms, mm = self._threshold_arrays(thresholds)
        plausible = (val >= thresholds.review_floor) & (val > none[:, None])
        if cos is not None:  # an image unlike anything the model knows, however peaked its softmax
            plausible &= cos >= thresholds.min_cosine
        passes = (val >= ms[idx]) & (val - comp >= mm[idx] - 1e-7) & plausible
        if not self.multi_label:
            passes[:, 1:] = False  # single-label: only the winner can be applied
            plausible &= plausible[:, :1]  # the winner lost to the background: no candidates at all
            plausible &= ~passes[:, :1]  # an applied winner needs no review
        state = np.where(passes, AUTO, np.where(plausible, REVIEW, DROP)).astype(np.int8)
        return Decisions(label=idx, score=val, competitor=comp, state=state, none=none, cosine=cos)

    def _threshold_arrays(self, th: Thresholds) -> tuple[np.ndarray, np.ndarray]:
        if self._th_cache is None or self._th_cache[0] is not th:
            self._th_cache = (th, *th.arrays(self.labels.labels))
        return self._th_cache[1], self._th_cache[2]

    def pair_scores(self, emb: np.ndarray, label_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score and competitor of one given label per image (n,) each, as `decide` computes them."""
        s = self.scores(emb)
        rows = np.arange(len(s))
        idx = np.asarray(label_idx, np.int64)
        own = s[rows, idx].copy()
        if self.multi_label:
            comp = np.maximum(self._group_competitor(s[:, :-1], idx[:, None])[:, 0], s[:, -1])
        else:
            s[rows, idx] = -1.0
            comp = s.max(axis=1)  # best other label or the background
        return own, comp

    def _group_competitor(self, real: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """For each candidate, the best score among the other labels of its group (0 if alone)."""
        n, n_groups = real.shape[0], len(self._group_cols)
        best = np.zeros((n, n_groups), np.float32)
        second = np.zeros((n, n_groups), np.float32)
        arg = np.zeros((n, n_groups), np.int64)
        rows = np.arange(n)
        for g, cols in enumerate(self._group_cols):
            sub = real[:, cols]
            a = sub.argmax(axis=1)
            best[:, g], arg[:, g] = sub[rows, a], cols[a]
            if len(cols) > 1:
                sub[rows, a] = -1.0
                second[:, g] = sub.max(axis=1)
        g = self._group_of[idx]  # (n, k)
        r = rows[:, None]
        return np.where(arg[r, g] == idx, second[r, g], best[r, g])


@dataclass(frozen=True)
class TagSummary:
    """What a tagging run did: images seen, and how many got a tag, wait for review, or got none."""

    done: int
    total: int
    auto: int
    review: int
    untagged: int


def tag_library(
    store: Store,
    embedder: Embedder,
    labels: Vocabulary | LabelMatrix,
    *,
    min_score: float = DEFAULT_MIN_SCORE,
    min_margin: float = DEFAULT_MIN_MARGIN,
    review_floor: float = DEFAULT_REVIEW_FLOOR,
    cosine_fraction: float = DEFAULT_COSINE_FRACTION,
    use_calibration: bool = True,
    batch: int = 4096,
    cache_dir: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[JobProgress, None, TagSummary]:
    """Tag every indexed image of `embedder`'s model, block by block, yielding a JobProgress after each
    block (each one committed) and returning the TagSummary; `should_stop()` is checked between blocks.

    Candidates whose cosine is below `cosine_fraction` x the library's median best-label cosine are
    dropped (see DEFAULT_COSINE_FRACTION). Machine tags (auto, review) of the images seen are replaced; confirmed and rejected tags are never
    touched, and a label the user rejected is not applied again. Per-label thresholds saved by
    calibration override the global ones unless `use_calibration` is False. A label holding a word the
    model does not know (app.core.vocabulary) is never applied automatically: at most it waits in review.
    """
    from app.core.contracts import JobKind  # lazily: contracts takes its defaults from this module
    from app.core.jobs import progress
    from app.core.vocabulary import unknown_labels, vocabulary_for

    matrix = labels if isinstance(labels, LabelMatrix) else label_embeddings(embedder, labels, cache_dir)
    unknown = unknown_labels(vocabulary_for(embedder), matrix.labels)
    unread = np.array([lb in unknown for lb in matrix.labels], dtype=bool)
    scorer = Scorer.for_embedder(embedder, matrix)
    per_label = tag_store.load_thresholds(store, embedder.model_id) if use_calibration else {}
    ids, q, scales, _ = store.embedding_rows(
        embedder.model_id
    )  # one row per image: (image, model) is the key
    floor = cosine_fraction * library_cosine(scorer, q, scales) if cosine_fraction > 0 and len(ids) else -1.0
    th = Thresholds(min_score, min_margin, review_floor, max(-1.0, min(1.0, floor)), per_label)
    total, t0 = len(ids), time.perf_counter()
    auto = review = untagged = done = 0
    for start in range(0, total, batch):
        sl = slice(start, start + batch)
        d = scorer.decide(q[sl], th, row_scale=scales[sl])  # int8 rows: converted chunk by chunk
        d.state[(d.state == AUTO) & unread[d.label]] = REVIEW  # its score is a guess, not a match
        rows = decisions_to_rows(ids[sl], d, matrix.labels)
        tag_store.replace_machine_tags(store, ids[sl], rows, embedder.model_id)
        auto += int((d.state == AUTO).any(axis=1).sum())
        review += int(((d.state == REVIEW).any(axis=1) & ~(d.state == AUTO).any(axis=1)).sum())
        untagged += int((d.state == DROP).all(axis=1).sum())
        done = min(start + batch, total)
        yield progress(JobKind.TAG, done, total, elapsed_s=time.perf_counter() - t0)
        if should_stop is not None and should_stop():
            break
    if total == 0:
        yield progress(JobKind.TAG, 0, 0)
    return TagSummary(done, total, auto, review, untagged)


def library_cosine(scorer: Scorer, emb: np.ndarray, row_scale: np.ndarray | None = None) -> float:
    """Median best-label cosine over (a sample of) a library: the model's typical "this matches" level."""
    rows = np.unique(np.linspace(0, len(emb) - 1, min(len(emb), COSINE_SAMPLE)).astype(np.int64))
    rs = None if row_scale is None else row_scale[rows]
    d = scorer.decide(emb[rows], Thresholds(0.0, 0.0, 0.0), row_scale=rs, k=1)
    return float(np.median(d.cosine[:, 0]))


def decisions_to_rows(
    image_ids: np.ndarray, d: Decisions, labels: tuple[str, ...]
) -> list[tuple[int, str, float, str]]:
    """(image_id, label, score, status) for every kept candidate."""
    r, c = np.nonzero(d.state != DROP)
    status = np.where(d.state[r, c] == AUTO, "auto", "review")
    return [
        (int(image_ids[i]), labels[d.label[i, j]], float(d.score[i, j]), str(st))
        for i, j, st in zip(r.tolist(), c.tolist(), status.tolist(), strict=True)
    ]
