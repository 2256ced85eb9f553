"""The typed shapes the front ends and the core `Library` exchange (frozen dataclasses, no dicts)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from app.core.errors import UsageError

# Tagging's defaults live here, not in app.core.tagging, so the contracts stay cheap to import.
DEFAULT_MIN_SCORE = 0.60
DEFAULT_MIN_MARGIN = 0.10


@dataclass(frozen=True)
class Filters:
    """Search filters carried from the command line or the window down to SQL (`Store.ids_matching`).

    `folder` is a path prefix, dates compare on ISO text (`date_to` inclusive at its precision),
    `camera` a case-insensitive substring, `tag` an applied (auto or confirmed) label.
    """

    folder: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    camera: str | None = None
    tag: str | None = None

    def __bool__(self) -> bool:
        """True when any filter is set."""
        return any(getattr(self, f.name) for f in fields(self))


NO_FILTERS = Filters()


@dataclass(frozen=True)
class TagSettings:
    """The tagging rule a user chose (Preferences, or `fovea tag --min-score/--min-margin`)."""

    min_score: float = DEFAULT_MIN_SCORE
    min_margin: float = DEFAULT_MIN_MARGIN

    def __post_init__(self) -> None:
        for name in ("min_score", "min_margin"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise UsageError(f"{name} must be between 0 and 1, got {v}")


@dataclass(frozen=True)
class LibrarySummary:
    """One library folder as the sidebar and Preferences show it."""

    path: Path
    state: str  # online | offline | indexing
    count: int  # indexed ('ok') images
    errors: int  # images that could not be read


@dataclass(frozen=True)
class TagInfo:
    label: str
    score: float | None  # None for a label the user added by hand
    status: str  # auto | review | confirmed | rejected
    weak_reason: str | None = None  # e.g. "the model does not know: dog": its score is a guess


@dataclass(frozen=True)
class ImageDetails:
    """One image's path, metadata, tags (best first) and newest caption."""

    image_id: int
    path: Path
    width: int | None
    height: int | None
    taken_at: str | None
    camera: str | None
    tags: tuple[TagInfo, ...]
    caption: str | None

    @property
    def size_text(self) -> str | None:
        return f"{self.width} × {self.height}" if self.width else None  # noqa: RUF001


@dataclass(frozen=True)
class ViewCounts:
    all: int  # indexed images
    review: int  # images with a tag waiting for a decision
    errors: int  # images that could not be read


class JobKind(enum.Enum):
    """The long jobs; front ends recognise a job by this, never by its label text."""

    INDEX = "Indexing"
    TAG = "Tagging"
    CAPTION = "Captioning"
    DEMO = "Preparing the demo"
    PULL = "Pulling"
    CONVERT = "Converting"
    EXPLAIN = "Explaining"

    @property
    def label(self) -> str:
        return self.value


@dataclass(frozen=True)
class JobProgress:
    """One progress step of any job, the only progress type the front ends see: `total` 0 while unknown."""

    done: int
    total: int
    message: str
    eta_s: float | None = None
    errors: int = 0  # files that could not be read so far
    phase: str = (
        ""  # the job's own stage when it has several: 'scan' | 'embed' (index), 'download' (pull), 'done'
    )


@dataclass(frozen=True)
class Hit:
    """One search result, the same for every search: `score` is the cosine; text-side fields when fused."""

    image_id: int
    path: Path
    score: float
    weak: bool  # below the model's weak threshold (and no text match): flagged, never dropped
    caption: str | None = None
    tags: tuple[str, ...] = ()  # applied labels, best first
    fused: float | None = None  # the RRF score that ordered the hits, None without fusion
    dense_rank: int | None = None
    text_rank: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(self.path), "score": self.score, "weak": self.weak}
        if self.caption is not None:
            out["caption"] = self.caption
        if self.tags:
            out["tags"] = list(self.tags)
        if self.fused is not None:
            out.update(fused=self.fused, dense_rank=self.dense_rank, text_rank=self.text_rank)
        return out


@dataclass(frozen=True)
class StatusReport:
    """What `fovea status` prints: counts, errors, roots, embeddings per model, tags, runtime."""

    db: Path
    by_status: dict[str, int]
    errors: tuple[tuple[Path, str, float], ...]  # (path, reason, time), newest first
    roots: tuple[tuple[Path, str], ...]  # (path, state)
    models: tuple[tuple[str, int], ...]  # (model id, embedded images)
    model: str  # the model folder the library opens with
    tags: dict[str, Any]  # TagCounts.to_json()
    runtime: dict[str, Any]

    @property
    def images(self) -> int:
        return sum(n for s, n in self.by_status.items() if s != "missing")

    def to_json(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "by_status": self.by_status,
            "errors": [{"path": str(p), "reason": r, "time": t} for p, r, t in self.errors],
            "roots": [{"path": str(p), "state": s} for p, s in self.roots],
            "models": [{"model_id": m, "images": n} for m, n in self.models],
            "model": self.model,
            "tags": self.tags,
            "runtime": self.runtime,
            "db": str(self.db),
        }
