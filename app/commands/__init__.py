"""Handlers behind `fovea COMMAND`; each takes the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import importlib

# command -> module in app.commands holding `run(args) -> int`
_HANDLERS = {
    "gui": "gui",
    "demo": "demo",
    "index": "index",
    "search": "search",
    "similar": "search",
    "duplicates": "search",
    "embed": "embed",
    "tag": "tags",
    "tags": "tags",
    "caption": "captions",
    "caption-image": "captions",
    "status": "status",
    "models": "models",
    "doctor": "doctor",
}


def dispatch(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"{__name__}.{_HANDLERS[args.command]}")
    return module.run(args)
