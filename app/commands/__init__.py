"""Handlers behind `fovea COMMAND`; each takes the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> module in app.commands holding `run(args) -> int`
_HANDLERS = {
    "gui": "gui",
    "demo": "demo",
    "index": "index",
    "search": "search",
    "similar": "search",
    "duplicates": "search",
    "embed": "embed",
    "explain": "explain",
    "tag": "tags",
    "tags": "tags",
    "caption": "captions",
    "caption-image": "captions",
    "status": "status",
    "models": "models",
    "doctor": "doctor",
}


# Commands that run long jobs: App Nap and idle sleep held off, MLX's buffer cache emptied at the end.
# (The window wraps each of its jobs itself: app/gui/workers.py.)
_JOBS = {"index", "tag", "caption", "models", "demo"}


def dispatch(args: argparse.Namespace) -> int:
    if sys.platform == "darwin":  # importing mlx only where there is a Metal cache to cap
        from mlx_models.device import configure_memory

        configure_memory()
    module = importlib.import_module(f"{__name__}.{_HANDLERS[args.command]}")
    if args.command not in _JOBS:
        return module.run(args)
    from app.core.job_scope import job_scope

    with job_scope(args.command):
        return module.run(args)
