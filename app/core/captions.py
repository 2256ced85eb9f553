"""The caption job: caption the opted-in libraries' images with a LLaVA captioner, resumably.

`caption_library()` is a plain generator of `JobProgress` returning a CaptionSummary, like the indexer: the CLI draws a bar,
the GUI runs it in a worker. Each caption is committed as soon as it exists (generation takes ~0.1-2 s
an image, so a transaction per image costs nothing), so a stopped or killed job loses at most one
image and a rerun continues where it stopped: images already captioned by this model id are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from app.core import text_index
from app.core.captions_backend import DEFAULT_PROMPT, Captioner, check_sampling
from app.core.contracts import JobKind, JobProgress
from app.core.decode import DecodeError, decode_ahead, open_image
from app.core.errors import BackendError, FoveaError, UsageError
from app.core.jobs import progress as job_progress
from app.core.store import Store

DEFAULT_CAPTION_MODEL = "llava-interleave-qwen-0.5b"
DEFAULT_MAX_TOKENS = 64
# Model failures (not file failures) on this many images in a row, before any success, stop the job:
# a broken caption model must not fill the errors table with one line per photo.
MAX_MODEL_FAILURES = 3


@dataclass
class CaptionSummary:
    model_id: str
    captioned: int = 0  # captions written this run
    skipped: int = 0  # images already captioned by this model (the resume)
    errors: int = 0  # per-file errors recorded this run
    missing: int = 0  # files gone since indexing (left to the indexer to mark)
    stopped: bool = False  # should_stop() or the limit ended the run early; a rerun continues


def caption_model_dir(name_or_path: str | None = None) -> Path:
    """The caption model folder: a path or installed name, else the installed default; UsageError if none."""
    from app.core.model_registry import resolve_model
    from app.core.paths import models_dir

    if name_or_path:
        return resolve_model(name_or_path)
    default = models_dir() / DEFAULT_CAPTION_MODEL
    if default.is_dir():
        return default
    raise UsageError(f"no caption model; pass --caption-model PATH or pull {DEFAULT_CAPTION_MODEL}")


# ---- per-library opt-in ------------------------------------------------------------------------


def set_captioning(store: Store, root: str | Path, enabled: bool, now: float | None = None) -> None:
    """Opt a library root in to (or out of) captioning; its existing captions are kept either way."""
    root_id = store.root_id(root)
    if root_id is None:
        raise FoveaError(f"{root}: not a library (add it with `fovea index`)")
    with store.transaction():
        store.set_caption_root(root_id, enabled, time.time() if now is None else now)


def captioning_roots(store: Store) -> list[Path]:
    """The library roots opted in to captioning."""
    return store.caption_roots()


# ---- the job -----------------------------------------------------------------------------------


def _todo(store: Store, model_id: str) -> tuple[list[tuple[int, Path]], int]:
    """('ok' images of opted-in roots without a caption by this model, count already captioned)."""
    return store.uncaptioned(model_id)


def caption_library(
    store: Store,
    captioner: Captioner,
    *,
    limit: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    prompt: str = DEFAULT_PROMPT,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = 0.0,
    decode_side: int = 768,
) -> Generator[JobProgress, None, CaptionSummary]:
    """Caption up to `limit` uncaptioned images of the opted-in libraries with `captioner` (greedy by default).

    Yields a JobProgress after every image, then a 'done' item, and returns the CaptionSummary.
    Files that cannot be read, or that the model fails on, are recorded in the errors table (reason
    prefixed "caption:") and the job goes on; a model that fails on its first images raises BackendError.
    `decode_side`: JPEGs are decoded reduced to no less than this (LLaVA towers take 336-384 px).
    """
    check_sampling(max_tokens, temperature, 1.0)
    if limit is not None and limit < 0:
        raise FoveaError(f"limit={limit} must not be negative")
    t0 = time.monotonic()
    model_id = captioner.model_id
    summary = CaptionSummary(model_id)
    text_index.refresh(store)  # catch up with indexing and tagging before captions start to arrive
    todo, summary.skipped = _todo(store, model_id)
    if limit is not None and limit < len(todo):
        todo, summary.stopped = todo[:limit], True
    total = len(todo)

    def progress(phase: str, done: int) -> JobProgress:
        return job_progress(JobKind.CAPTION, done, total, phase, summary.errors, time.monotonic() - t0)

    yield progress("caption", 0)
    model_failures = 0
    done = 0
    # One decode thread, two ahead: decoding overlaps generation, which dominates.
    for (image_id, path), fut in decode_ahead(todo, lambda it: open_image(it[1], min_side=decode_side), 1, 2):
        err = fut.exception()
        reason: str | None = None
        result = None
        if isinstance(err, FileNotFoundError):
            summary.missing += 1
        elif isinstance(err, DecodeError):
            reason = err.reason
        elif err is not None:
            reason = f"{type(err).__name__}: {err}"
        else:
            try:
                result = captioner.caption(fut.result().image, prompt, max_tokens, temperature)
            except BackendError as e:
                model_failures += 1
                if model_failures >= MAX_MODEL_FAILURES and summary.captioned == 0:
                    raise BackendError(
                        f"the caption model failed on {model_failures} images in a row: {e}"
                    ) from e
                reason = f"caption model: {e}"
        now = time.time()
        with store.transaction():
            if result is not None:
                model_failures = 0
                store.put_caption(image_id, model_id, result.text, now)
                if store.has_caption_error(path):
                    store.clear_error(path)  # an earlier caption failure is fixed; indexer errors stay
                summary.captioned += 1
            elif reason is not None:
                store.record_error(path, f"caption: {reason}", now)
                summary.errors += 1
            text_index.refresh(store)
        done += 1
        yield progress("caption", done)
        if should_stop is not None and should_stop() and done < total:
            summary.stopped = True
            break
    yield progress("done", done)
    return summary


def uncaptioned_count(store: Store, model_id: str) -> int:
    """How many 'ok' images of the opted-in libraries still lack a caption by `model_id`."""
    return len(_todo(store, model_id)[0])
