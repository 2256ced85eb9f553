"""Tag vocabularies and their label embeddings (prompt ensembles, cached per model).

A vocabulary file is plain text, one label a line, grouped under `[group]` headers:

    # comments and blank lines are ignored
    @include default                    # merge the bundled default vocabulary first
    @template a photo of {}.            # prompt templates ({} takes the label's phrase); replace the defaults
    @background a blank image           # prompts of the "no plausible label" pseudo-label
    [animals]
    cat                                 # phrase "a cat"
    golden retriever = a golden retriever; a yellow dog     # phrases used instead of the label text
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from app.core.atomic import atomic_write
from app.core.errors import UsageError
from app.core.paths import resources_dir, user_data_dir

# Ensembling a few phrasings averages out the quirks of any single prompt (CLIP paper, sec. 3.1.4).
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of {}.",
    "a picture of {}.",
    "a close-up photo of {}.",
    "a bright photo of {}.",
    "a cropped photo of {}.",
    "an image showing {}.",
)
# Generic "nothing in particular" prompts: an image whose best label loses to these gets no tag.
DEFAULT_BACKGROUND: tuple[str, ...] = (
    "a blank image.",
    "random noise.",
    "an empty plain background.",
    "a blurry abstract texture.",
    "a solid colour.",
)
TEXT_BATCH = 256


class TextEmbedder(Protocol):
    model_id: str

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Vocabulary:
    """Labels with their group and phrases, plus the templates and background prompts to use."""

    labels: tuple[str, ...]
    groups: tuple[str, ...]  # one per label
    phrases: tuple[tuple[str, ...], ...]  # one tuple per label, substituted into the templates
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    background: tuple[str, ...] = DEFAULT_BACKGROUND

    def __post_init__(self) -> None:
        if not self.labels:
            raise UsageError("the tag vocabulary has no labels")
        if len(set(self.labels)) != len(self.labels):
            raise UsageError("the tag vocabulary lists a label twice")
        if not (len(self.groups) == len(self.phrases) == len(self.labels)):
            raise UsageError("labels, groups and phrases must have one entry per label")
        if not self.templates or any("{}" not in t for t in self.templates):
            raise UsageError("every prompt template needs a {} placeholder")

    def prompts(self, i: int) -> list[str]:
        return [t.format(p) for p in self.phrases[i] for t in self.templates]

    def digest(self) -> str:
        """Changes whenever any text that reaches the text encoder changes."""
        h = hashlib.sha256()
        for part in (self.templates, self.background, self.labels, *self.phrases):
            h.update("\x1f".join(part).encode())
            h.update(b"\x1e")
        return h.hexdigest()[:16]


def default_phrase(label: str) -> str:
    """The label with an indefinite article, unless it reads as a plural or an activity ("books", "skiing")."""
    last = label.split()[-1]
    if (last.endswith("s") and not last.endswith(("ss", "us"))) or last.endswith("ing"):
        return label
    return f"{'an' if label[0] in 'aeiou' else 'a'} {label}"


def normalize_label(label: str) -> str:
    """Labels are compared lower-case with single spaces."""
    return " ".join(label.strip().lower().split())


@dataclass
class _Parsed:
    labels: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # label -> (group, phrases)
    templates: list[str] = field(default_factory=list)
    background: list[str] = field(default_factory=list)


def _parse(path: Path, out: _Parsed, seen: set[Path]) -> None:
    path = path.resolve()
    if path in seen:
        raise UsageError(f"{path}: vocabulary includes itself")
    seen.add(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UsageError(f"cannot read vocabulary {path}: {e.strerror or e}") from e
    group = "other"
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("@"):
            key, _, value = line.partition(" ")
            value = value.strip()
            if key == "@include":
                _parse(_resolve_include(value, path), out, seen)
            elif key == "@template":
                out.templates.append(value)
            elif key == "@background":
                out.background.append(value)
            else:
                raise UsageError(f"{path}:{n}: unknown directive {key}")
        elif line.startswith("[") and line.endswith("]"):
            group = normalize_label(line[1:-1]) or "other"
        else:
            name, _, alt = line.partition("=")
            label = normalize_label(name)
            if label:
                phrases = tuple(p.strip() for p in alt.split(";") if p.strip()) or (default_phrase(label),)
                out.labels[label] = (group, phrases)  # a later definition overrides an included one


def _resolve_include(value: str, including: Path) -> Path:
    if value in ("default", "demo"):
        return resources_dir() / "tags" / f"{value}.txt"
    p = Path(value)
    return p if p.is_absolute() else including.parent / p


def vocabulary_for_model(model_dir: Path) -> Path:
    """The bundled vocabulary that suits a model: the one its config.json names ("fovea"/"vocabulary",
    written by training/ for the demo model, so that a copy keeps it), else colours x shapes for the
    bundled demo folder, else everyday labels."""
    from app.core.backends.ids import model_note
    from app.core.paths import demo_model_dir

    name = model_note(model_dir, "vocabulary")  # None without a readable config: loading the model says so
    tags = resources_dir() / "tags"
    if name is not None:
        bundled = sorted(p.stem for p in tags.glob("*.txt"))
        if name not in bundled:
            raise UsageError(
                f'{Path(model_dir) / "config.json"}: "fovea"/"vocabulary" names {name!r}, which is not a '
                f"bundled vocabulary ({', '.join(bundled)})"
            )
        return tags / f"{name}.txt"
    demo = Path(model_dir).resolve() == demo_model_dir().resolve()
    return tags / ("demo.txt" if demo else "default.txt")


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """Read a vocabulary file (None: the bundled default); see the module docstring for the format."""
    parsed = _Parsed()
    _parse(Path(path) if path is not None else resources_dir() / "tags" / "default.txt", parsed, set())
    labels = tuple(parsed.labels)
    return Vocabulary(
        labels=labels,
        groups=tuple(parsed.labels[k][0] for k in labels),
        phrases=tuple(parsed.labels[k][1] for k in labels),
        templates=tuple(parsed.templates) or DEFAULT_TEMPLATES,
        background=tuple(parsed.background) or DEFAULT_BACKGROUND,
    )


@dataclass(frozen=True)
class LabelMatrix:
    """Normalised label embeddings: `vecs` (L, d) in vocabulary order, `none` (d,) the background."""

    labels: tuple[str, ...]
    groups: tuple[str, ...]
    vecs: np.ndarray
    none: np.ndarray


def _ensemble(embedder: TextEmbedder, prompt_sets: list[list[str]]) -> np.ndarray:
    """Normalised mean of normalised prompt embeddings, one row per prompt set."""
    flat = [p for ps in prompt_sets for p in ps]
    embs = np.concatenate(
        [embedder.embed_texts(flat[i : i + TEXT_BATCH]) for i in range(0, len(flat), TEXT_BATCH)]
    )
    embs /= np.maximum(np.linalg.norm(embs, axis=1, keepdims=True), 1e-12)
    bounds = np.cumsum([0] + [len(ps) for ps in prompt_sets])
    mean = np.stack([embs[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    return (mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def default_cache_dir() -> Path:
    return user_data_dir() / "cache" / "labels"


def label_embeddings(embedder: TextEmbedder, vocab: Vocabulary, cache_dir: Path | None = None) -> LabelMatrix:
    """Embed every label's prompt ensemble and the background, reusing `<cache>/<model_id>/<digest>.npy`.

    A file cache (not a table) because label embeddings belong to the model, not the library:
    every library opened with the same model and vocabulary shares them.
    """
    folder = (cache_dir or default_cache_dir()) / embedder.model_id
    file = folder / f"{vocab.digest()}.npy"
    mat: np.ndarray | None = None
    if file.is_file():
        try:
            mat = np.load(file, allow_pickle=False)
        except (OSError, ValueError):
            mat = None  # a torn or foreign file: recompute and replace it
        if mat is not None and mat.shape[0] != len(vocab.labels) + 1:
            mat = None
    if mat is None:
        sets = [vocab.prompts(i) for i in range(len(vocab.labels))] + [list(vocab.background)]
        mat = _ensemble(embedder, sets)  # (L + 1, d); the last row is the background
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_write(file) as fh:
                np.save(fh, mat, allow_pickle=False)
        except OSError:
            pass  # a read-only data dir only costs a recomputation next time
    mat = np.asarray(mat, np.float32)
    return LabelMatrix(labels=vocab.labels, groups=vocab.groups, vecs=mat[:-1], none=mat[-1])
