"""Per-label thresholds fitted from the user's own confirmations and rejections.

For each label with enough decided examples, the fitted `min_score` is the loosest (lowest) threshold
whose precision on those examples stays at or above the target; labels with fewer examples keep the
global defaults. Scores are recomputed from the stored embeddings, so a decision taken under an older
vocabulary or threshold still counts with the current model's view of the image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.core import tag_store
from app.core.tag_vocab import LabelMatrix, Vocabulary, label_embeddings
from app.core.tagging import DEFAULT_MIN_MARGIN, DEFAULT_MIN_SCORE, Scorer

if TYPE_CHECKING:
    from app.core.backends import Embedder
    from app.core.store import Store

DEFAULT_TARGET_PRECISION = 0.95
DEFAULT_MIN_EXAMPLES = 8  # below this a label's precision estimate is too coarse to move its threshold


@dataclass(frozen=True)
class LabelCalibration:
    """Precision and coverage of one label's auto rule on its decided examples, before and after fitting.

    Precision: confirmed share of the examples the rule would apply (None when it applies none);
    coverage: share of the confirmed examples it applies (None when there are none).
    """

    label: str
    n_confirmed: int
    n_rejected: int
    fitted: bool  # False: too few examples, the global defaults stay in force
    min_score: float
    min_margin: float
    precision_before: float | None
    coverage_before: float | None
    precision_after: float | None
    coverage_after: float | None


@dataclass(frozen=True)
class CalibrationReport:
    model_id: str
    target_precision: float
    min_examples: int
    labels: tuple[LabelCalibration, ...]

    def to_json(self) -> dict:
        return {
            "model_id": self.model_id,
            "target_precision": self.target_precision,
            "min_examples": self.min_examples,
            "labels": [asdict(c) for c in self.labels],
        }


def precision_coverage(accepted: np.ndarray, positive: np.ndarray) -> tuple[float | None, float | None]:
    n_acc, n_pos = int(accepted.sum()), int(positive.sum())
    hits = int((accepted & positive).sum())
    return (hits / n_acc if n_acc else None), (hits / n_pos if n_pos else None)


def fit_threshold(scores: np.ndarray, eligible: np.ndarray, positive: np.ndarray, target: float) -> float:
    """Lowest t with precision(score >= t among eligible) >= target; above every example if none reaches it.

    `eligible` marks examples the rest of the rule (the margin) lets through at any score.
    """
    s, pos = scores[eligible], positive[eligible]
    if len(s) == 0:
        return float(np.nextafter(np.float32(scores.max(initial=0.0)), np.float32(2.0)))
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], pos[order]
    precision = np.cumsum(pos) / np.arange(1, len(s) + 1)  # of the top-j examples
    # Ties share one threshold: only the last index of each run of equal scores is a real cut.
    last_of_run = np.append(s[1:] != s[:-1], True)
    ok = np.flatnonzero(last_of_run & (precision >= target))
    if len(ok):
        return float(s[ok[-1]])
    return float(min(1.0, np.nextafter(np.float32(s[0]), np.float32(2.0))))


def calibrate(
    store: Store,
    embedder: Embedder,
    labels: Vocabulary | LabelMatrix,
    *,
    min_score: float = DEFAULT_MIN_SCORE,
    min_margin: float = DEFAULT_MIN_MARGIN,
    target_precision: float = DEFAULT_TARGET_PRECISION,
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    save: bool = True,
    cache_dir: Path | None = None,
) -> CalibrationReport:
    """Fit per-label `min_score` from the decisions in `store`, save them for `tag_library`, and report.

    "Before" uses the thresholds in force now (saved ones, else the globals); the margin is kept as is.
    Decided labels missing from the vocabulary, or images without an embedding, are left out.
    """
    matrix = labels if isinstance(labels, LabelMatrix) else label_embeddings(embedder, labels, cache_dir)
    scorer = Scorer.for_embedder(embedder, matrix)
    current = tag_store.load_thresholds(store, embedder.model_id)
    index = {lb: i for i, lb in enumerate(matrix.labels)}
    out: list[LabelCalibration] = []
    fitted: dict[str, tuple[float, float, int]] = {}
    for label, (ids, positive) in sorted(tag_store.decided(store).items()):
        if label not in index:
            continue
        emb = store.f16_vectors(embedder.model_id, ids.tolist()).astype(np.float32)
        has = np.linalg.norm(emb, axis=1) > 0 if emb.size else np.zeros(len(ids), bool)
        emb, positive = emb[has], positive[has]
        if len(positive) == 0:
            continue
        score, comp = scorer.pair_scores(emb, np.full(len(emb), index[label]))
        ms0, mm0 = current.get(label, (min_score, min_margin))
        p0, c0 = precision_coverage((score >= ms0) & (score - comp >= mm0), positive)
        ok = len(positive) >= min_examples
        ms1 = (
            fit_threshold(score, score - comp >= min_margin, positive, target_precision) if ok else min_score
        )
        mm1 = min_margin
        p1, c1 = precision_coverage((score >= ms1) & (score - comp >= mm1), positive)
        if ok:
            fitted[label] = (ms1, mm1, len(positive))
        out.append(
            LabelCalibration(label, int(positive.sum()), int((~positive).sum()), ok, ms1, mm1, p0, c0, p1, c1)
        )
    if save:
        tag_store.save_thresholds(store, embedder.model_id, fitted)
    return CalibrationReport(embedder.model_id, target_precision, min_examples, tuple(out))
