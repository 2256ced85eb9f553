"""Ray actors that fail the way a worker machine does: the process dies on one particular image."""

from __future__ import annotations

import os

from app.core.cluster import EmbedActor

POISON_WIDTH = 77  # a file this wide kills its embed worker, every time


class DyingEmbedActor(EmbedActor):
    def __call__(self, batch):
        if POISON_WIDTH in set(int(w) for w in batch["width"]):
            os._exit(1)  # as a segfault or the OOM killer would: no exception, the worker is gone
        return super().__call__(batch)
