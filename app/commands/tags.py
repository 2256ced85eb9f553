"""`fovea tag` and `fovea tags list|review|confirm|reject|calibrate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.context import demo_notice, open_library, print_json, tag_settings
from app.commands.progress import drive, graceful_interrupt
from app.core.contracts import JobProgress
from app.core.errors import UsageError


def _check_unit(name: str, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise UsageError(f"{name} must be between 0 and 1, got {value}")


def run_tag(args: argparse.Namespace) -> int:
    _check_unit("--min-score", args.min_score)
    _check_unit("--min-margin", args.min_margin)
    settings = tag_settings(args)
    with open_library(args) as lib, graceful_interrupt() as should_stop:
        lib.embedder()  # a model that cannot be opened fails before anything is said about it
        demo_notice(lib)
        unknown = lib.unknown_labels(lib.vocabulary(args.labels).labels)
        if unknown:
            shown = ", ".join(list(unknown)[:8]) + (", ..." if len(unknown) > 8 else "")
            print(
                f"note: the model does not know the words of {len(unknown)} labels ({shown}): "
                "their tags are guesses, never applied automatically",
                file=sys.stderr,
            )

        def show(p: JobProgress) -> None:
            print(f"\rtagging {p.done}/{p.total}", end="", file=sys.stderr)

        last = drive(lib.tag_job(settings, args.labels, should_stop), show)  # the TagSummary
        print(file=sys.stderr)
        if last is not None:
            print(
                f"tagged {last.done} images: {last.auto} with tags, {last.review} to review, "
                f"{last.untagged} without a plausible label"
            )
        counts = lib.tag_counts().by_status
        print("tags: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        if should_stop():  # stopped by a signal: every block written so far is kept
            return should_stop.exit_code
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "tag":
        return run_tag(args)
    action = args.tags_command or "list"
    with open_library(args, read_only=action in ("list", "review")) as lib:
        if action == "list":
            rows = lib.list_tags(getattr(args, "status", None), getattr(args, "label", None))
            if getattr(args, "json", False):
                print_json([r.to_json() for r in rows])
            else:
                for r in rows:
                    score = "  -  " if r.score is None else f"{r.score:.3f}"
                    print(f"{score} {r.status:<9} {r.label:<20} {r.path}")
            return 0
        if action == "review":
            items = lib.review_queue()
            unknown = lib.unknown_labels({lb for i in items for lb, _ in i.candidates})
            if args.json:
                print_json([i.to_json(unknown) for i in items])
            else:
                for i in items:
                    marked = (f"{lb} {s:.2f}{'*' if lb in unknown else ''}" for lb, s in i.candidates)
                    print(f"{i.path}: " + ", ".join(marked))
                for label, reason in unknown.items():
                    print(f"* {label}: weak, {reason}")
                print(f"{len(items)} images to review (fovea tags confirm|reject PATH LABEL)")
            return 0
        if action in ("confirm", "reject"):
            row = lib.decide_tag(
                Path(args.path).expanduser(),
                args.label,
                "confirmed" if action == "confirm" else "rejected",
            )
            print(f"{row.status}: {row.label} on {row.path}")
            return 0
        if action == "calibrate":
            report = lib.calibrate(tag_settings(args), getattr(args, "labels", None))
            if args.json:
                print_json(report.to_json())
                return 0
            print(
                f"target precision {report.target_precision:.2f}; labels need {report.min_examples} decisions"
            )

            def pct(x: float | None) -> str:
                return "  -  " if x is None else f"{x:5.2f}"

            print(f"{'label':<20} {'conf':>4} {'rej':>4}  prec before/after  cover before/after  min_score")
            for c in report.labels:
                print(
                    f"{c.label:<20} {c.n_confirmed:>4} {c.n_rejected:>4}  {pct(c.precision_before)} / "
                    f"{pct(c.precision_after)}    {pct(c.coverage_before)} / {pct(c.coverage_after)}    "
                    f"{c.min_score:.3f}{'' if c.fitted else ' (default: too few decisions)'}"
                )
            return 0
    raise UsageError(f"unknown tags action {action!r}")
