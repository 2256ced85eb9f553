"""Measure a model folder's weak-hit cosines on held-out scenes and record them in its config.json.

    python -m training.weak_cosine resources/models/fovea-demo-clip [--dry-run]

The search engine reads them (config.json "fovea"/"weak_cosine", via app/core/backends/ids.py) as
the cosine below which a hit counts as weak. Rule, for each query kind: take the 10th percentile
of matching cosines (m10) and the 90th percentile of non-matching ones (n90); the threshold is
their midpoint, capped at m10, so at least 90% of true matches stay above it.

- text: colour+shape queries ("a red circle") against the held-out gallery; an image matches when
  it holds a shape of that colour and kind.
- image: held-out single-shape scenes against each other; a pair matches when the shapes share
  colour and kind.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training import quality
from training.scenes import class_prompts, render


@dataclass(frozen=True)
class Split:
    match_p10: float
    nonmatch_p90: float
    threshold: float


def split(match: np.ndarray, nonmatch: np.ndarray) -> Split:
    """The weak-hit threshold between matching and non-matching cosines (rule in the module doc)."""
    m10, n90 = float(np.percentile(match, 10)), float(np.percentile(nonmatch, 90))
    return Split(round(m10, 4), round(n90, 4), round(min(m10, (m10 + n90) / 2), 3))


def measure(folder: Path, render_size: int = 96) -> dict[str, Split]:
    from app.core.backends import open_embedder

    emb = open_embedder(folder, "mlx")

    def images(scenes) -> np.ndarray:
        return np.concatenate(
            [emb.embed_images([render(s, render_size) for s in scenes[i : i + 128]]) for i in range(0, len(scenes), 128)]
        )  # fmt: skip

    gallery = quality.heldout_gallery()
    text_cos = images(gallery) @ emb.embed_texts(quality.query_texts()).T  # (n_images, n_queries)
    relevant = np.array([[s.contains(c, k) for (c, k) in class_prompts()] for s in gallery])
    single = quality.heldout_single()
    single_emb = images(single)
    image_cos = single_emb @ single_emb.T  # (n, n)
    label = quality.single_class_index(single)
    same = label[:, None] == label[None, :]
    off_diag = ~np.eye(len(single), dtype=bool)
    return {
        "text": split(text_cos[relevant], text_cos[~relevant]),
        "image": split(image_cos[same & off_diag], image_cos[~same]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--dry-run", action="store_true", help="print, do not write config.json")
    a = p.parse_args(argv)
    splits = measure(a.folder)
    print(json.dumps({k: asdict(v) for k, v in splits.items()}, indent=1))
    if not a.dry_run:
        path = a.folder / "config.json"
        cfg = json.loads(path.read_text())
        cfg.setdefault("fovea", {})["weak_cosine"] = {k: v.threshold for k, v in splits.items()}
        path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
