"""`fovea caption` (caption the libraries, resumable) and `fovea caption-image IMAGE` (one image)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.context import err, open_library, print_json
from app.commands.progress import bar, drive, graceful_interrupt
from app.core import captions, captions_backend
from app.core.captions_backend import Captioner
from app.core.contracts import JobProgress
from app.core.errors import UsageError


def captioner(args: argparse.Namespace) -> Captioner:
    # Looked up on the modules at call time, so a replaced loader (tests, plugins) is seen by every caller.
    return captions_backend.open_captioner(
        captions.caption_model_dir(getattr(args, "caption_model", None)), getattr(args, "backend", "auto")
    )


def run(args: argparse.Namespace) -> int:
    return run_caption_image(args) if args.command == "caption-image" else run_caption(args)


def run_caption(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must not be negative")
    with open_library(args) as lib:
        if not lib.libraries():
            err("nothing to caption: no library yet (run `fovea index FOLDER` first)")
            return 0
        progress = None

        def show(p: JobProgress) -> None:
            nonlocal progress
            progress = progress or bar("captioning")
            progress.total, progress.n = p.total, p.done
            progress.set_postfix(errors=p.errors, refresh=False)
            progress.refresh()

        with graceful_interrupt() as should_stop:
            # Running the command is the opt-in: every library is captioned now and kept captioned later.
            summary = drive(lib.caption_job(args.caption_model, args.limit, should_stop), show)
        if progress is not None:
            progress.close()
        print(
            f"captioned: {summary.captioned} new, {summary.skipped} already done, {summary.errors} errors"
            + (" (stopped early; rerun to continue)" if summary.stopped else ""),
            file=sys.stderr,
        )
        if summary.errors:
            shown = [(p, r) for p, r, _ in lib.errors() if r.startswith("caption:")][:20]
            for path, reason in shown:
                err(f"error: {path}: {reason}")
        if should_stop():  # stopped by a signal: the captions written so far are kept
            return should_stop.exit_code
    return 0


def run_caption_image(args: argparse.Namespace) -> int:
    from app.core.decode import open_image

    path = Path(args.image).expanduser()
    if not path.is_file():
        raise UsageError(f"{path}: no such image file")
    cap = captioner(args)
    image = open_image(path).image  # a broken file raises DecodeError: exit 1 with its reason
    result = cap.caption(image, args.prompt, args.max_tokens, args.temperature)
    if args.json:
        print_json({"text": result.text, "tokens": result.tokens, "model_id": cap.model_id})
    else:
        print(result.text)
    return 0
