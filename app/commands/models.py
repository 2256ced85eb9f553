"""`fovea models list|pull|convert`."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.context import print_json
from app.core.errors import FoveaError, UsageError
from app.core.model_registry import REGISTRY
from app.core.paths import demo_model_dir, models_dir


def _installed() -> list[dict]:
    found = [{"name": "demo", "path": str(demo_model_dir()), "bundled": True}] if demo_model_dir().is_dir() else []
    if models_dir().is_dir():
        found += [
            {"name": p.name, "path": str(p), "bundled": False}
            for p in sorted(models_dir().iterdir())
            if (p / "config.json").exists()
        ]
    return found


def run(args: argparse.Namespace) -> int:
    cmd = args.models_command
    if cmd in (None, "list"):
        installed = _installed()
        names = {m["name"] for m in installed}
        if getattr(args, "json", False):
            print_json(
                {
                    "installed": installed,
                    "registry": [
                        {"name": e.name, "repo_id": e.repo_id, "kind": e.kind, "download_mb": e.download_mb,
                         "installed": e.name in names}
                        for e in REGISTRY
                    ],
                }
            )
            return 0
        print("Installed:")
        for m in installed:
            print(f"  {m['name']:<28} {m['path']}")
        print("Available to pull (needs network):")
        for e in REGISTRY:
            mark = " (installed)" if e.name in names else ""
            print(f"  {e.name:<28} {e.repo_id}  ~{e.download_mb} MB {e.kind}{mark}")
        return 0
    if cmd == "convert":
        from converters.convert import ConversionError, convert

        try:
            res = convert(
                Path(args.src), Path(args.dst), dtype=args.dtype, quantize=args.quantize,
                allow_pickle=args.allow_pickle, verify=not args.no_verify,
            )
        except ConversionError as e:
            raise FoveaError(str(e)) from e
        print(f"converted {args.src} -> {args.dst}" + (f" ({res.verify_summary})" if getattr(res, "verify_summary", None) else ""))
        return 0
    if cmd == "pull":
        from app.core.model_pull import pull

        for line in pull(args.name):
            print(line)
        return 0
    raise UsageError(f"unknown models action {cmd!r}")
