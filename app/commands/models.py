"""`fovea models list|pull|convert`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.context import print_json
from app.core.errors import UsageError
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


def _pull(name: str, dtype: str | None = None) -> int:
    """Progress on stderr (one rewritten line on a terminal), the outcome on stdout."""
    from app.core.model_install import pull_job

    tty = sys.stderr.isatty()
    shown = -1
    for step in pull_job(name, dtype):
        if step.phase == "done":
            if tty and shown >= 0:
                sys.stderr.write("\n")
            print(step.message)
        elif step.phase == "download":
            pct = int(100 * step.done / step.total) if step.total else 0
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
        from app.core.model_install import convert_model, reference_available

        # One default with the window and `models pull`: verify when transformers is importable.
        verify = False if args.no_verify else None
        summary = convert_model(
            Path(args.src), Path(args.dst), dtype=args.dtype, quantize=args.quantize,
            allow_pickle=args.allow_pickle, verify=verify,
        )  # fmt: skip
        if verify is None and not reference_available():
            print("fovea: reference check skipped: torch/transformers are not installed", file=sys.stderr)
        print(f"converted {args.src} -> {args.dst}" + (f" ({summary})" if summary else ""))
        return 0
    if cmd == "pull":
        return _pull(args.name, args.dtype)
    raise UsageError(f"unknown models action {cmd!r}")
