"""Tag queries and user decisions over the Store's `tags` table, plus calibrated per-label thresholds.

Decisions (confirmed, rejected) are keyed by image id, which the indexer keeps across renames and
moves, so they follow the file; machine tags (auto, review) are what re-tagging replaces.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.core import text_index
from app.core.errors import UsageError
from app.core.tag_vocab import normalize_label

if TYPE_CHECKING:
    from app.core.store import Store

STATUSES = ("auto", "review", "confirmed", "rejected")
MACHINE = ("auto", "review")
DECISIONS = ("confirmed", "rejected")


@dataclass(frozen=True)
class TagRow:
    path: Path
    label: str
    score: float | None
    status: str
    image_id: int
    model_id: str | None
    updated_at: float | None

    def to_json(self) -> dict:
        return {"path": str(self.path), "label": self.label, "score": self.score, "status": self.status}


@dataclass(frozen=True)
class ReviewItem:
    """One image waiting for a decision, with its candidate labels best first."""

    path: Path
    image_id: int
    candidates: tuple[tuple[str, float], ...]

    def to_json(self, unknown: dict[str, str] | None = None) -> dict:
        """`unknown`: label -> reason for labels with words the model does not know (flagged weak)."""
        unknown = unknown or {}
        return {
            "path": str(self.path),
            "candidates": [
                {"label": lb, "score": s, **({"weak": True, "reason": unknown[lb]} if lb in unknown else {})}
                for lb, s in self.candidates
            ],
        }


@dataclass(frozen=True)
class TagCounts:
    by_status: dict[str, int]  # every status, zero when absent
    by_label: dict[str, int]  # applied tags (auto or confirmed) per label, most frequent first

    def to_json(self) -> dict:
        return {"by_status": self.by_status, "by_label": self.by_label}


def _path(text: str) -> Path:
    from app.core.store import text_to_path

    return text_to_path(text)


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown tag status {status!r} (choose from {', '.join(STATUSES)})")


def list_tags(store: Store, status: str | None = None, label: str | None = None) -> list[TagRow]:
    """Tags joined with their image paths, by path then score (best first)."""
    _check_status(status)
    rows = store.tag_rows(status, normalize_label(label) if label else None)
    return [TagRow(_path(r[0]), *r[1:]) for r in rows]


def set_decision(store: Store, path: str | Path, label: str, decision: str) -> TagRow:
    """Record the user's verdict on (image, label); a label the tagger never proposed is added as given."""
    if decision not in DECISIONS:
        raise UsageError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    image_id = store.image_id_for_path(Path(path).absolute()) or store.image_id_for_path(path)
    if image_id is None:
        raise UsageError(f"not in the library: {path}")
    label = normalize_label(label)
    if not label:
        raise UsageError("empty label")
    with store.transaction():
        store.put_decision(image_id, label, decision, time.time())
        text_index.refresh(store)
    return next(t for t in list_tags(store, label=label) if t.image_id == image_id)


def review_queue(store: Store, limit: int | None = None) -> list[ReviewItem]:
    """Images with candidates in review, the closest calls (lowest best score) last."""
    rows = store.review_rows()
    items: dict[int, tuple[str, list[tuple[str, float]]]] = {}
    for image_id, path, label, score in rows:
        items.setdefault(image_id, (path, []))[1].append((label, float(score or 0.0)))
    out = [ReviewItem(_path(p), i, tuple(c)) for i, (p, c) in items.items()]
    out.sort(key=lambda r: (-r.candidates[0][1], str(r.path)))
    return out[:limit] if limit else out


def tag_counts(store: Store) -> TagCounts:
    by_status = dict.fromkeys(STATUSES, 0)
    by_status.update(store.tag_status_counts())
    return TagCounts(by_status=by_status, by_label=store.applied_label_counts())


def replace_machine_tags(
    store: Store, image_ids: Iterable[int], rows: Sequence[tuple[int, str, float, str]], model_id: str
) -> None:
    """Drop the auto/review tags of `image_ids` and write `rows` (image_id, label, score, status).

    One transaction; a row whose (image, label) holds a user decision is skipped, so decisions win.
    """
    now = time.time()
    with store.transaction():
        store.replace_machine_rows(image_ids, rows, model_id, now)
        text_index.refresh(store)  # in the same transaction: the tag words are searchable with the tags


def decided(store: Store) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """label -> (image ids int64, is_confirmed bool) of the user's decisions: the ground truth."""
    out: dict[str, tuple[list[int], list[bool]]] = {}
    for image_id, label, status in store.decision_rows():
        ids, pos = out.setdefault(label, ([], []))
        ids.append(image_id)
        pos.append(status == "confirmed")
    return {lb: (np.asarray(i, np.int64), np.asarray(p, bool)) for lb, (i, p) in out.items()}


def save_thresholds(store: Store, model_id: str, fitted: dict[str, tuple[float, float, int]]) -> None:
    """Replace the model's per-label thresholds with `fitted` (label -> (min_score, min_margin, n_examples))."""
    now = time.time()
    with store.transaction():
        store.replace_thresholds(model_id, [(lb, ms, mm, n) for lb, (ms, mm, n) in fitted.items()], now)


def load_thresholds(store: Store, model_id: str) -> dict[str, tuple[float, float]]:
    """label -> (min_score, min_margin) saved by calibration for this model ({} when none)."""
    rows = store.threshold_rows(model_id)
    return {lb: (float(ms), float(mm)) for lb, ms, mm in rows}
