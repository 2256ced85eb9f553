"""The search engine: rclip-style queries over the in-memory index, ranked exactly from float16 vectors.

Stages (chosen with bench/search.py): the `VectorIndex` holds every image's int8 vector and finds a
candidate pool by approximate score (its rule is in app/core/vector_index.py); the pool's float16
vectors are read from the store and rescored exactly (int8 alone caps recall@10 near 0.98), then
filters and image records shape the hits. The index is persisted beside the library
(app/core/index_file.py), so a new process starts from it instead of rebuilding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from app.core.backends import Embedder
from app.core.contracts import NO_FILTERS, Filters, Hit
from app.core.errors import UsageError
from app.core.index_file import IndexFileError, index_path, load_index, save_index
from app.core.query import QueryTerm, check_date, embed_file, embed_query, parse_query
from app.core.vector_index import Candidates, IndexConfig, VectorIndex
from app.core.vocabulary import unknown_reason, vocabulary_for
from app.core.weak_match import (
    ReferenceLabels,
    Support,
    WeakMatchRule,
    calibration_for,
    default_rule,
    lifts,
    neutral_vectors,
    reference_labels,
)

if TYPE_CHECKING:  # imported by the engine's owner only where the exact path is wanted (not the CLI)
    from app.core.exact_index import ExactPath

QueryKind = Literal["text", "image"]

# Cosine below which a hit is flagged weak, per model type and query kind. Text->image cosines are
# small because of the modality gap: CLIP ViT-B matches sit near 0.25-0.35, unrelated pairs near
# 0.10-0.18; SigLIP matches near 0.10-0.20 (sigmoid(117 * cos - 16.5) crosses 0.5 near 0.14).
# Image->image cosines of the same subject are usually above 0.7 for both families.
WEAK_COSINE: dict[tuple[str, QueryKind], float] = {
    ("clip", "text"): 0.20,
    ("clip", "image"): 0.60,
    ("siglip", "text"): 0.08,
    ("siglip", "image"): 0.60,
}
_DEFAULT_WEAK: dict[QueryKind, float] = {"text": 0.20, "image": 0.60}
# A persisted index is rewritten once it holds this many rows more than the file, and this share more:
# a save costs about as much as reading the file, so growth by small batches does not rewrite it each time.
_SAVE_MIN_ROWS = 1000
_SAVE_GROWTH = 0.25


def weak_threshold(model_type: str, kind: QueryKind) -> float:
    """The documented weak-hit cosine for a model family (unknown families get the CLIP values)."""
    family = "siglip" if "siglip" in model_type.lower() else model_type.lower()
    return WEAK_COSINE.get((family, kind), _DEFAULT_WEAK[kind])


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]  # best first
    no_strong_match: bool  # even the best hit is weak (or nothing matched)
    threshold: float  # the weak threshold used
    reason: str | None = None  # why nothing is strong, in words (None when something is)
    unknown_words: tuple[str, ...] = ()  # query words the model does not know (closed vocabularies)

    def to_json(self, query: str, hits: list[dict] | None = None) -> dict:
        """The `search --json` object; `hits` replaces the hits' own JSON (e.g. with tags added)."""
        return {
            "query": query,
            "no_strong_match": self.no_strong_match,
            "reason": self.reason,
            "hits": hits if hits is not None else [h.to_json() for h in self.hits],
        }


def flag_unknown_words(result: SearchResult, words: tuple[str, ...]) -> SearchResult:
    """Every hit weak, with the reason: a query the model cannot read has no strong match."""
    if not words:
        return result
    hits = [replace(h, weak=True) for h in result.hits]
    return replace(result, hits=hits, no_strong_match=True, reason=unknown_reason(words), unknown_words=words)


class SearchEngine:
    """Search one model's embedding space of a store. Dependencies are injected (store, embedder)."""

    def __init__(
        self,
        store,
        embedder: Embedder,
        *,
        config: IndexConfig | None = None,
        weak_threshold: float | dict[QueryKind, float] | None = None,
        rescore: int = 64,
        persist: bool = True,
        exact: ExactPath | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.model_id = embedder.model_id
        self.index = VectorIndex(embedder.dim, config)
        self.vocabulary = vocabulary_for(embedder)
        self.weak_match = calibration_for(embedder.folder)  # None: the family's single cosine threshold
        self._neutral: dict[QueryKind, np.ndarray] = {}
        self._refs: ReferenceLabels | None = None  # the support test's labels, embedded on first use
        self._weak_override = weak_threshold
        # Candidates rescored exactly (at least 4k): int8 ranks the true top 10 inside the top 64 in the
        # bench, and each SQLite float16 row fetched costs ~10-50 us.
        self.rescore = rescore
        self._last_rowid = 0
        self._config = config
        # The index persisted beside the library (app.core.index_file): None for in-memory stores.
        self._index_file = (
            None if str(store.path) == ":memory:" or not persist else index_path(store.path, self.model_id)
        )
        self._generation: int | None = None  # the store generation the index reflects (None: not started)
        self._saved_rows = 0
        # The exact float16 path (app.core.exact_index): None keeps the int8 index for every query.
        self.exact = exact
        self._state = (0, 0)  # (last rowid, vectors generation) of the store at the last refresh

    def refresh(self) -> int:
        """Load the rows the store gained since the last refresh; returns how many.

        The first refresh in a process starts from the persisted index when it is current (only the
        rows added since it was written are read), else from the store, and persists the result.
        """
        generation = self.store.vectors_generation()  # read first: a later bump only makes the file stale
        if self._generation is None:
            self._generation = generation
            self._restore(generation)
        ids, i8, scales, last = self.store.embedding_rows(self.model_id, self._last_rowid)
        if len(ids):
            self.index.add(ids, i8, scales)
        self._last_rowid = last
        self._state = (last, generation)
        grown = len(self.index) - self._saved_rows
        if generation == self._generation and grown > (
            0 if self._saved_rows == 0 else max(_SAVE_MIN_ROWS, _SAVE_GROWTH * self._saved_rows)
        ):
            self._persist(generation)
        return len(ids)

    def _restore(self, generation: int) -> None:
        if self._index_file is None:
            return
        try:
            loaded = load_index(
                self._index_file,
                model_id=self.model_id,
                dim=self.embedder.dim,
                generation=generation,
                config=self._config,
            )
        except IndexFileError:
            return  # missing, stale or damaged: rebuilt from the store by this refresh
        if loaded.last_rowid > self.store.last_embedding_rowid():
            return  # written for a later state of the store (e.g. a backup was put back): rebuilt
        self.index, self._last_rowid, self._saved_rows = loaded.index, loaded.last_rowid, len(loaded.index)

    def _persist(self, generation: int) -> None:
        """Write the index beside the library; a read-only folder only costs the rebuild next time."""
        if self._index_file is None:
            return
        try:
            save_index(
                self._index_file,
                self.index,
                generation=generation,
                last_rowid=self._last_rowid,
                model_id=self.model_id,
            )
        except OSError:
            return
        self._saved_rows = len(self.index)

    # ---- queries -------------------------------------------------------------------------------
    def threshold(self, kind: QueryKind) -> float:
        o = self._weak_override
        if isinstance(o, dict):
            return float(o.get(kind, weak_threshold(self.embedder.model_type, kind)))
        if o is not None:
            return float(o)
        measured = self.embedder.weak_cosine  # from the model folder, when it has one
        return float(measured.get(kind, weak_threshold(self.embedder.model_type, kind)))

    def rule(self, kind: QueryKind, n_images: int | None = None) -> WeakMatchRule:
        """The weak-match rule in force (for a library of n images when n is given): an explicit threshold
        alone, else the model folder's calibration (app.core.weak_match), else the family's cosine
        threshold with the default support cut (an in-memory embedder without a folder has no vocabulary
        to read labels from: threshold alone)."""
        if self._weak_override is None and self.weak_match is not None:
            return self.weak_match.rule(kind, n_images)
        if self._weak_override is None and self.embedder.folder is not None:
            rule = default_rule(self.threshold(kind), kind)
            return rule if n_images is None else rule.for_library(n_images)
        return WeakMatchRule(self.threshold(kind), -np.inf)

    def _support(
        self,
        kind: QueryKind,
        rule: WeakMatchRule,
        vec: np.ndarray,
        top_vectors: np.ndarray,
        allowed: np.ndarray | None,
        exclude: int | None,
    ) -> Support | None:
        """The support test's values on the best hits (None when the rule has no support cut)."""
        if rule.min_support is None or top_vectors.shape[1] == 0:
            return None
        if self._refs is None:
            self._refs = reference_labels(self.embedder)
            if self._refs is None:
                return None
        support = self._refs.support(kind, np.asarray(vec, np.float32), top_vectors)
        if kind == "image" and rule.min_label_support is not None and support.query_label is not None:
            # Does the library hold what the query image shows? Its label's own best hits, read as text.
            label = self._refs.vector(support.query_label)
            pool = self.index.search(label, max(self.rescore, rule.label_hits + 1), allowed)
            ids = pool.ids[pool.ids != exclude] if exclude is not None else pool.ids
            f16 = self.store.f16_vectors(self.model_id, ids.tolist()).astype(np.float32)
            if f16.shape[1]:
                best = f16[np.argsort(-(f16 @ label), kind="stable")[: rule.label_hits]]
                support = replace(support, label_support=self._refs.text_support(label, best).value)
        return support

    def _lifts(
        self, kind: QueryKind, rule: WeakMatchRule, vectors: np.ndarray, scores: np.ndarray
    ) -> np.ndarray:
        if not np.isfinite(rule.min_lift) or vectors.shape[1] == 0:
            return np.full(len(scores), np.inf, np.float32)
        if kind not in self._neutral:  # a few prompts or images, embedded once per engine
            self._neutral[kind] = neutral_vectors(self.embedder, kind)
        return lifts(vectors, scores, self._neutral[kind])

    def query_vector(self, terms: list[QueryTerm]) -> np.ndarray:
        """normalise(sum w_i * v_i) over the parsed terms; a library image's stored vector is used when present."""
        return embed_query(self.embedder, terms, lambda p: self._image_vector(p)[1])

    def _stored_vector(self, image_id: int) -> np.ndarray | None:
        v = self.store.f16_vectors(self.model_id, [image_id])
        if v.shape[1] == 0 or not np.any(v[0]):
            return None
        return v[0].astype(np.float32)

    def _image_vector(self, path: Path) -> tuple[int | None, np.ndarray]:
        """(library id or None, normalised vector): the stored vector for a library image, else embed the file."""
        image_id = self.store.image_id_for_path(path.resolve()) if path.exists() else None
        if image_id is None:
            image_id = self.store.image_id_for_path(path)
        if image_id is not None:
            v = self._stored_vector(image_id)
            if v is not None:
                return image_id, v
        return image_id, embed_file(self.embedder, path)

    def search(
        self,
        query: str | list[str],
        k: int = 20,
        filters: Filters = NO_FILTERS,
    ) -> SearchResult:
        """rclip-style terms (a plain string is one term) -> the k best images passing `filters`."""
        terms = parse_query(query)
        kind: QueryKind = "image" if all(t.kind == "image" for t in terms if t.weight > 0) else "text"
        vec = self.query_vector(terms)
        result = self.search_vector(vec, k, kind, filters=filters)
        return flag_unknown_words(result, self.unknown_words(terms))

    def unknown_words(self, terms: list[QueryTerm]) -> tuple[str, ...]:
        """Words of the positive text terms the model does not know (a negative term only steers away)."""
        return self.vocabulary.unknown_words(t.value for t in terms if t.kind == "text" and t.weight > 0)

    def similar(self, image: int | str | Path, k: int = 20, filters: Filters = NO_FILTERS) -> SearchResult:
        """Images like `image` (a library id, a library path or any image file); the image itself is left out."""
        if isinstance(image, (int, np.integer)):
            image_id, vec = int(image), self._stored_vector(int(image))
            if vec is None:
                raise UsageError(f"image id {image_id} has no embedding for model {self.model_id}")
        else:
            image_id, vec = self._image_vector(Path(image).expanduser())
        return self.search_vector(vec, k, "image", filters=filters, exclude=image_id)

    def _candidates(self, vec: np.ndarray, n: int, allowed: np.ndarray | None) -> Candidates:
        """The candidate pool: from the int8 index, or from the exact path where it was chosen."""
        if self.exact is None:
            return self.index.search(vec, n, allowed)
        from app.core.exact_index import StoreState

        return self.exact.candidates(self.index, vec, n, allowed, StoreState(*self._state))

    def search_vector(
        self,
        vec: np.ndarray,
        k: int,
        kind: QueryKind = "text",
        *,
        filters: Filters = NO_FILTERS,
        exclude: int | None = None,
    ) -> SearchResult:
        """The k best images for a normalised query vector (d,)."""
        if k <= 0:
            raise UsageError(f"k must be positive, got {k}")
        check_date(filters.date_from), check_date(filters.date_to)
        self.refresh()
        hit_cut = self.threshold(kind)  # per hit: below the model's match-level cosine
        allowed = self.store.ids_matching(filters)
        if exclude is not None:
            allowed = allowed[allowed != exclude] if allowed is not None else None
        # The per-query rule (is the best hit a real match?) for the images this search ranks.
        rule = self.rule(kind, len(allowed) if allowed is not None else len(self.index))
        pool = self._candidates(vec, max(self.rescore, 4 * k) + (exclude is not None), allowed)
        ids = pool.ids[pool.ids != exclude] if exclude is not None else pool.ids
        if len(ids) == 0:
            return SearchResult([], True, rule.min_top, "nothing matched")
        f16 = self.store.f16_vectors(self.model_id, ids.tolist()).astype(np.float32)  # (m, d) exact rescoring
        exact = f16 @ np.asarray(vec, np.float32) if f16.shape[1] else np.zeros(len(ids), np.float32)
        lift = self._lifts(kind, rule, f16, exact)
        order = np.argsort(-exact, kind="stable")
        hits: list[Hit] = []
        gone: list[int] = []
        for start in range(0, len(order), 2 * k):  # records of a few more than k, in case some went missing
            chunk = order[start : start + 2 * k]
            recs = {r.id: r for r in self.store.image_info(ids[chunk].tolist())}
            for pos in chunk:
                rec = recs.get(int(ids[pos]))
                if rec is None or rec.status != "ok":
                    gone.append(int(ids[pos]))
                    continue
                s = float(exact[pos])
                hits.append(Hit(rec.id, Path(rec.path), s, s < hit_cut))
                if len(hits) == k:
                    break
            if len(hits) == k:
                break
        if gone:  # images deleted or gone missing since they were loaded
            self.index.remove(np.array(gone, np.int64))
        if self.exact is not None:  # after an answer: maybe start the exact copy (a GPU only)
            from app.core.exact_index import StoreState

            self.exact.answered(StoreState(*self._state))
        if not hits:
            return SearchResult([], True, rule.min_top, "nothing matched")
        # The query has no strong match when its best hit fails the rule; then every hit is weak.
        # A lower hit that fails only the rule stays strong: a red circle among other shapes scores
        # below a lone one, and is still what was asked for.
        best = int(np.flatnonzero(ids == hits[0].image_id)[0])
        # The support reads the pool's best hits, not the k shown: `-k 1` must not change the verdict.
        support = self._support(kind, rule, vec, f16[order[: rule.support_hits]], allowed, exclude)
        reason = rule.reason(hits[0].score, float(lift[best]), kind, support)
        if reason is None and hits[0].weak:
            reason = f"the best match scores {hits[0].score:.2f}, below this model's {hit_cut:.2f}"
        if reason is None:
            return SearchResult(hits, False, rule.min_top, None)
        return SearchResult([replace(h, weak=True) for h in hits], True, rule.min_top, reason)
