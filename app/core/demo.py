"""The demo library: generated scenes written once under the user data directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.contracts import JobKind, JobProgress, TagSettings
from app.core.jobs import StopFn
from app.core.paths import resources_dir, user_data_dir

if TYPE_CHECKING:
    from app.core.api import Library
    from app.core.jobs import Job

DEMO_SEED = 2024  # differs from the training seeds, so the demo shows held-out images
DEMO_COUNT = 300
DEMO_QUERIES = ("red circle", "a blue star", "two green squares", "a yellow triangle on a striped background")


DEMO_MODEL_WARNING = "The demo model only knows coloured shapes; results on your photos mean nothing."
DEMO_MODEL_NOTICE = (
    f"{DEMO_MODEL_WARNING} Get a real model: `fovea models pull clip-vit-b32` (once, with a network), "
    "then `fovea --model clip-vit-b32 index FOLDER`."
)
MANIFEST = "captions.json"  # written last by write_demo_library: its presence marks a generated library


def is_demo_folder(folder: Path) -> bool:
    """A folder the demo generator wrote (its manifest is there), i.e. coloured shapes, not photos."""
    return (Path(folder) / MANIFEST).is_file()


def needs_demo_notice(model_folder: Path, roots: list[Path]) -> bool:
    """True when the demo model is active on a library holding anything besides demo scenes.

    An empty library (no roots yet) holds nothing to mislead about.
    """
    from app.core.paths import demo_model_dir

    if Path(model_folder).resolve() != demo_model_dir().resolve():
        return False
    return any(not is_demo_folder(r) for r in roots)


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
    from app.core.scenes import captions, make_scenes, render

    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for i, scene in enumerate(make_scenes(seed, n)):
        caps = captions(scene)
        name = f"{i:04d}-{caps[0].replace(' ', '-')[:60]}.jpg"
        render(scene, size).save(folder / name, quality=92)
        manifest[name] = caps
        yield i + 1
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def demo_job(lib: Library, settings: TagSettings, should_stop: StopFn | None = None) -> Job:
    """Write the demo library (once), add and index it, and tag it with the demo vocabulary.

    The CLI's `fovea demo` and the window's "Open the Demo Library" both run this: the demo is
    tagged in both. Returns the folder, or None when stopped before the library was complete.
    """
    folder = demo_library_dir()
    if not is_demo_folder(folder):
        for n in write_demo_library(folder):
            yield JobProgress(n, DEMO_COUNT, f"{JobKind.DEMO.label}… {n} of {DEMO_COUNT} photos")
            if should_stop is not None and should_stop():
                return None
    lib.add_root(folder)
    summary = yield from lib.index_job([folder], should_stop)
    if summary is not None and summary.stopped:
        return folder
    yield from lib.tag_job(settings, demo_vocabulary(), should_stop)
    return folder
