"""`fovea gui [FOLDER]`."""

from __future__ import annotations

import argparse

from app.commands.context import db_path


def run(args: argparse.Namespace) -> int:
    from app.gui.app import run as run_gui

    return run_gui(
        db_path(args),
        args.model,
        args.backend if args.backend != "auto" else None,
        folder=getattr(args, "folder", None),
    )
