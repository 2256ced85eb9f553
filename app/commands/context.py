"""What most commands need: the core `Library` for `--db/--model/--backend`, and printing helpers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.core.api import Library
from app.core.contracts import TagSettings
from app.core.paths import default_db_path
from app.core.settings import Settings


def db_path(args: argparse.Namespace) -> Path:
    return Path(args.db).expanduser() if getattr(args, "db", None) else default_db_path()


def open_library(args: argparse.Namespace, db: Path | None = None, read_only: bool = False) -> Library:
    """The library the command works on; the embedder opens on first use. An upgrade's copy is announced.
    Read commands pass read_only=True: the file is never created, and a read-only library still answers."""
    lib = Library(
        db or db_path(args),
        getattr(args, "model", None),
        getattr(args, "backend", "auto"),
        read_only=read_only,
    )
    if lib.upgrade_backup is not None:
        err(f"fovea: {lib.upgrade_note()}")
    return lib


def tag_settings(args: argparse.Namespace) -> TagSettings:
    """--min-score/--min-margin, else the user's saved preferences: the CLI and the window tag alike."""
    saved = Settings.load()
    score = getattr(args, "min_score", None)
    margin = getattr(args, "min_margin", None)
    return TagSettings(
        saved.min_score if score is None else score, saved.min_margin if margin is None else margin
    )


def demo_notice(lib: Library, folders: list[Path] = ()) -> None:
    """One line on stderr when the demo model is about to be used on something other than demo scenes."""
    from app.core.demo import DEMO_MODEL_NOTICE

    if lib.demo_notice_needed(folders):
        err(f"note: {DEMO_MODEL_NOTICE}")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def err(msg: str) -> None:
    print(msg, file=sys.stderr)
