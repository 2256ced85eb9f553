"""`fovea models list|pull|convert`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.context import print_json
from app.core.errors import FoveaError, UsageError
from app.core.model_registry import REGISTRY
from app.core.paths import demo_model_dir, models_dir


def _installed() -> list[dict]:
    found = (
        [{"name": "demo", "path": str(demo_model_dir()), "bundled": True}]
        if demo_model_dir().is_dir()
        else []
    )
    if models_dir().is_dir():
        found += [
            {"name": p.name, "path": str(p), "bundled": False}
            for p in sorted(models_dir().iterdir())
            if (p / "config.json").exists()
        ]
    return found


def _pull(name: str) -> int:
    """Progress on stderr (one rewritten line on a terminal), the outcome on stdout."""
    from app.core.model_pull import pull

    tty = sys.stderr.isatty()
    shown = -1
    for step in pull(name):
        if step.stage == "done":
            if tty and shown >= 0:
                sys.stderr.write("\n")
            print(step.message)
        elif step.stage == "download":
            pct = int(100 * step.done_bytes / step.total_bytes) if step.total_bytes else 0
            if tty:
                sys.stderr.write(f"\r{step.message}   ")
                sys.stderr.flush()
                shown = pct
            elif pct // 10 != shown // 10:  # a log gets one line per 10%
                shown = pct
                print(step.message, file=sys.stderr)
        else:
            if tty and shown >= 0:
                sys.stderr.write("\n")
                shown = -1
            print(step.message, file=sys.stderr)
    return 0


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
                        {
                            "name": e.name,
                            "repo_id": e.repo_id,
                            "kind": e.kind,
                            "download_mb": e.download_mb,
                            "installed": e.name in names,
                        }
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
        from mlx_models.common.errors import ModelError

        from converters.convert import convert

        try:
            res = convert(
                Path(args.src), Path(args.dst), dtype=args.dtype, quantize=args.quantize,
                allow_pickle=args.allow_pickle, verify=not args.no_verify,
            )  # fmt: skip
        except ModelError as e:  # the converter's refusals, one line each
            raise FoveaError(str(e)) from e
        except ImportError as e:  # verification needs torch/transformers (absent from the packaged app)
            raise FoveaError(
                f"verification needs {e.name}; install the torch extra or pass --no-verify"
            ) from e
        print(f"converted {args.src} -> {args.dst}" + (f" ({res.report.summary})" if res.report else ""))
        return 0
    if cmd == "pull":
        return _pull(args.name)
    raise UsageError(f"unknown models action {cmd!r}")
