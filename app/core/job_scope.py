"""What surrounds every long job (index, tag, caption, pull), in the CLI and in the window alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mlx_models.device import release_cache

from app.core.activity import job_activity


@contextmanager
def job_scope(name: str) -> Iterator[None]:
    """No App Nap or idle sleep while the job runs; MLX's cached buffers handed back when it ends."""
    with job_activity(f"Fovea: {name}"):
        try:
            yield
        finally:
            release_cache()  # even after a failure: a long-running window must not keep the job's memory
