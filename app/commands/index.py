"""`fovea index FOLDER...`: add and (re)index; broken files are recorded and reported, never fatal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.context import embedder, err, open_store
from app.commands.progress import bar, graceful_interrupt
from app.core.errors import UsageError
from app.core.indexer import IndexSummary, index


def run_index(store, emb, folders: list[Path], batch_size: int = 32) -> IndexSummary:
    """Index with a progress bar on stderr; returns the summary (also printed)."""
    summary = IndexSummary()
    scan_bar = embed_bar = None
    with graceful_interrupt() as should_stop:
        for p in index(store, emb, folders, batch_size=batch_size, should_stop=should_stop):
            if p.phase == "scan":
                if scan_bar is None:
                    scan_bar = bar("scanning")
                scan_bar.n = p.done
                scan_bar.refresh()
            elif p.phase == "embed":
                if embed_bar is None:
                    embed_bar = bar("embedding")
                embed_bar.total = p.total
                embed_bar.n = p.done
                embed_bar.set_postfix(errors=p.errors, refresh=False)
                embed_bar.refresh()
            if p.summary is not None:
                summary = p.summary
    for b in (scan_bar, embed_bar):
        if b is not None:
            b.close()
    print(
        f"indexed: {summary.embedded} embedded, {summary.added} new, {summary.updated} changed, "
        f"{summary.moved} moved, {summary.missing} missing, {summary.skipped} unchanged, {summary.errors} errors"
        + (" (stopped early; rerun to continue)" if summary.stopped else ""),
        file=sys.stderr,
    )
    for root in summary.offline_roots:
        err(f"offline: {root} (unreadable or unmounted; its photos are kept, none marked missing)")
    return summary


def run(args: argparse.Namespace) -> int:
    folders = [Path(f).expanduser() for f in args.folders]
    for f in folders:
        if not f.is_dir():
            raise UsageError(f"{f}: not a folder")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    emb = embedder(args)
    with open_store(args) as store:
        summary = run_index(store, emb, [f.resolve() for f in folders], args.batch_size)
        if summary.errors:
            for path, reason, _ in store.errors(limit=20):
                err(f"error: {path}: {reason}")
            if summary.errors > 20:
                err(f"... and {summary.errors - 20} more (fovea status --json lists them all)")
        if args.watch:
            from app.commands.watch import watch

            return watch(store, emb, folders)
    return 0
