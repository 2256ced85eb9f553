"""`fovea embed`: L2-normalised float32 rows for images then texts, in the order given."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from app.core.api import load_embedder
from app.core.decode import open_image
from app.core.errors import UsageError


def run(args: argparse.Namespace) -> int:
    if not args.image and not args.text:
        raise UsageError("embed needs at least one --image or --text")
    emb = load_embedder(args.model, args.backend)
    rows = []
    if args.image:
        rows.append(emb.embed_images([open_image(Path(f)).image for f in args.image]))
    if args.text:
        rows.append(emb.embed_texts(args.text))
    out = np.concatenate(rows).astype(np.float32)
    np.save(args.out, out)
    return 0
