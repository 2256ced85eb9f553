"""What most commands need: the library database and the embedder, opened once and lazily."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.core.backends import Embedder, open_embedder
from app.core.model_registry import resolve_model
from app.core.paths import default_db_path


def db_path(args: argparse.Namespace) -> Path:
    return Path(args.db).expanduser() if getattr(args, "db", None) else default_db_path()


def open_store(args: argparse.Namespace):
    from app.core.store import Store

    path = db_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Store(path)


def embedder(args: argparse.Namespace) -> Embedder:
    return open_embedder(resolve_model(getattr(args, "model", None)), getattr(args, "backend", "auto"))


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def err(msg: str) -> None:
    print(msg, file=sys.stderr)
