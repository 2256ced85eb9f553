"""The contract between the indexer and an engine that decodes and embeds somewhere else (a Ray cluster).

The indexer keeps scanning, change detection, rename reuse and every store write; an engine only turns
paths into vectors or per-file failures, which the indexer commits in its usual batched transactions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from app.core.backends import Embedder
from app.core.decode_pool import Failed


@dataclass(frozen=True)
class Embedded:
    """One file decoded and embedded by an engine; `vector` is (dim,) float32, L2-normalised."""

    vector: np.ndarray
    width: int
    height: int
    taken_at: str | None
    camera: str | None
    notes: str | None = None


class EmbedEngine(Protocol):
    """Decodes and embeds `paths` for `embedder`'s model, yielding (index into paths, outcome), any order.

    Every index comes back exactly once: a file the engine cannot finish is a `Failed` with its reason."""

    interleave_min: int  # new files a scan must leave before the indexer embeds mid-scan (a start's cost)

    def run(self, paths: Sequence[Path], embedder: Embedder) -> Iterator[tuple[int, Embedded | Failed]]: ...


def embed_with(
    store, embedder: Embedder, todo: list, engine: EmbedEngine, batch_size: int, summary
) -> Iterator[int]:
    """The indexer's embed stage through `engine`: outcomes are committed `batch_size` files at a time
    (app.core.indexer.commit_batch, the local path's transaction); yields the files handled after each."""
    from app.core.indexer import commit_batch, with_first_note

    batch: list[tuple[object, Embedded]] = []
    failed: list[tuple[object, str | None, str | None]] = []
    done = 0

    def flush() -> int:
        vectors = np.stack([e.vector for _, e in batch]) if batch else None  # (N, dim)
        return commit_batch(store, embedder.model_id, batch, vectors, failed, summary)

    for k, out in engine.run([it.path for it in todo], embedder):
        if isinstance(out, Failed):
            failed.append((todo[k], with_first_note(out.reason, out.notes), out.notes))
        else:
            batch.append((todo[k], out))
        if len(batch) + len(failed) >= batch_size:
            done += flush()
            yield done
    if batch or failed:
        done += flush()
        yield done
