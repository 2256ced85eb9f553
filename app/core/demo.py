"""The demo library: generated scenes written once under the user data directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from app.core.paths import resources_dir, user_data_dir

DEMO_SEED = 2024  # differs from the training seeds, so the demo shows held-out images
DEMO_COUNT = 300
DEMO_QUERIES = ("red circle", "a blue star", "two green squares", "a yellow triangle on a striped background")


def demo_library_dir() -> Path:
    return user_data_dir() / "demo-library"


def demo_vocabulary() -> Path:
    return resources_dir() / "tags" / "demo.txt"


def write_demo_library(
    folder: Path, n: int = DEMO_COUNT, seed: int = DEMO_SEED, size: int = 256
) -> Iterator[int]:
    """Render `n` captioned scenes into `folder` as JPEGs, yielding the count written so far.

    A manifest with each file's captions is written last; its presence marks the library complete.
    """
    from training.scenes import captions, make_scenes, render

    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for i, scene in enumerate(make_scenes(seed, n)):
        caps = captions(scene)
        name = f"{i:04d}-{caps[0].replace(' ', '-')[:60]}.jpg"
        render(scene, size).save(folder / name, quality=92)
        manifest[name] = caps
        yield i + 1
    (folder / "captions.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def ensure_demo_library(folder: Path | None = None) -> Path:
    """The demo library folder, generated only if it is absent or incomplete."""
    folder = folder or demo_library_dir()
    if not (folder / "captions.json").exists():
        for _ in write_demo_library(folder):
            pass
    return folder
