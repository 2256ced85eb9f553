"""`fovea tag` and `fovea tags list|review|confirm|reject|calibrate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.context import embedder, open_store, print_json
from app.commands.progress import graceful_interrupt
from app.core.errors import UsageError
from app.core.model_registry import resolve_model


def vocabulary_path(args: argparse.Namespace) -> Path:
    """--labels, else the colour/shape vocabulary for the demo model, else the bundled everyday one."""
    if getattr(args, "labels", None):
        p = Path(args.labels).expanduser()
        if not p.is_file():
            raise UsageError(f"{p}: no such vocabulary file")
        return p
    from app.core.tag_vocab import vocabulary_for_model

    return vocabulary_for_model(resolve_model(args.model))


def _check_unit(name: str, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise UsageError(f"{name} must be between 0 and 1, got {value}")


def run_tag(args: argparse.Namespace) -> int:
    from app.core.tag_store import tag_counts
    from app.core.tag_vocab import load_vocabulary
    from app.core.tagging import DEFAULT_MIN_MARGIN, DEFAULT_MIN_SCORE, tag_library

    _check_unit("--min-score", args.min_score)
    _check_unit("--min-margin", args.min_margin)
    vocab = load_vocabulary(vocabulary_path(args))
    emb = embedder(args)
    with open_store(args) as store, graceful_interrupt() as should_stop:
        last = None
        for last in tag_library(
            store,
            emb,
            vocab,
            min_score=DEFAULT_MIN_SCORE if args.min_score is None else args.min_score,
            min_margin=DEFAULT_MIN_MARGIN if args.min_margin is None else args.min_margin,
        ):
            print(f"\rtagging {last.done}/{last.total}", end="", file=sys.stderr)
            if should_stop():
                break
        print(file=sys.stderr)
        if last is not None:
            print(
                f"tagged {last.done} images: {last.auto} with tags, {last.review} to review, "
                f"{last.untagged} without a plausible label"
            )
        counts = tag_counts(store).by_status
        print("tags: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "tag":
        return run_tag(args)
    from app.core import tag_store

    action = args.tags_command or "list"
    with open_store(args) as store:
        if action == "list":
            rows = tag_store.list_tags(store, getattr(args, "status", None), getattr(args, "label", None))
            if getattr(args, "json", False):
                print_json([r.to_json() for r in rows])
            else:
                for r in rows:
                    score = "  -  " if r.score is None else f"{r.score:.3f}"
                    print(f"{score} {r.status:<9} {r.label:<20} {r.path}")
            return 0
        if action == "review":
            items = tag_store.review_queue(store)
            if args.json:
                print_json([i.to_json() for i in items])
            else:
                for i in items:
                    print(f"{i.path}: " + ", ".join(f"{lb} {s:.2f}" for lb, s in i.candidates))
                print(f"{len(items)} images to review (fovea tags confirm|reject PATH LABEL)")
            return 0
        if action in ("confirm", "reject"):
            row = tag_store.set_decision(
                store,
                Path(args.path).expanduser(),
                args.label,
                "confirmed" if action == "confirm" else "rejected",
            )
            print(f"{row.status}: {row.label} on {row.path}")
            return 0
        if action == "calibrate":
            from app.core.calibration import calibrate
            from app.core.tag_vocab import load_vocabulary

            report = calibrate(store, embedder(args), load_vocabulary(vocabulary_path(args)))
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
