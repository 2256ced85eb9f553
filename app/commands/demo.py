"""`fovea demo [--no-gui]`: the bundled demo library and model, offline."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.commands.context import db_path, err, open_library, tag_settings
from app.commands.progress import drive, job_bar
from app.core.demo import DEMO_QUERIES, demo_library_dir, is_demo_folder
from app.core.errors import FoveaError
from app.core.paths import demo_model_dir, user_data_dir


def _has_display() -> bool:
    """A screen someone can look at; an offscreen Qt platform (tests, CI) counts as none."""
    if os.environ.get("QT_QPA_PLATFORM") in ("offscreen", "minimal"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _demo_db(args: argparse.Namespace) -> Path:
    return db_path(args) if args.db else user_data_dir() / "demo.sqlite"


def run(args: argparse.Namespace) -> int:
    if not args.model and not demo_model_dir().is_dir():
        raise FoveaError(f"the bundled demo model is missing ({demo_model_dir()}); reinstall Fovea")
    if not args.no_gui and _has_display():
        from app.gui.app import run as run_gui

        # The window runs the same demo job (write, index, tag) as the headless demo below.
        return run_gui(
            _demo_db(args), args.model, args.backend if args.backend != "auto" else None, demo=True
        )
    if not args.no_gui:
        err("no display found: running the headless demo (pass --no-gui to ask for it)")
    return headless(args)


def headless(args: argparse.Namespace) -> int:
    """Write and index the demo library, tag it with the demo vocabulary, and print a few searches."""
    if not is_demo_folder(demo_library_dir()):
        err(f"writing the demo library to {demo_library_dir()} ...")
    with open_library(args, _demo_db(args)) as lib:
        lib.embedder()
        folder = drive(lib.demo_job(tag_settings(args)), job_bar())
        counts = lib.tag_counts()
        print(
            f"tags: {counts.by_status.get('auto', 0)} applied, {counts.by_status.get('review', 0)} to review"
        )
        for q in DEMO_QUERIES:
            result = lib.search(q, k=5)
            print(f'\nsearch "{q}"' + ("  (no strong match)" if result.no_strong_match else ""))
            for h in result.hits:
                print(f"  {h.score:.3f}{'*' if h.weak else ' '} {h.path.name}")
    print(f'\nlibrary: {_demo_db(args)}  (try: fovea --db {_demo_db(args)} search "purple ring")')
    return 0 if folder is not None else 1
