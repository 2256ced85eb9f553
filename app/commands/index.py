"""`fovea index FOLDER...`: add and (re)index; broken files are recorded and reported, never fatal."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.context import demo_notice, err, open_library
from app.commands.progress import StopRequest, bar, drive, graceful_interrupt, say
from app.core.api import Library
from app.core.contracts import JobProgress
from app.core.embed_engine import EmbedEngine
from app.core.errors import UsageError
from app.core.indexer import IndexSummary


def run_index(
    lib: Library,
    folders: list[Path],
    batch_size: int = 32,
    download_icloud: bool = False,
    engine: EmbedEngine | None = None,
) -> IndexSummary:
    """Index with a progress bar on stderr; returns the summary (also printed)."""
    bars: dict[str, object] = {}

    def show(p: JobProgress) -> None:
        if not p.phase:  # a line from the job itself, e.g. waiting for another indexer
            err(p.message)
            return
        if p.phase == "scan":
            b = bars["scan"] if "scan" in bars else bars.setdefault("scan", bar("scanning"))
            b.n = p.done
            b.refresh()
        elif p.phase == "embed":
            b = bars["embed"] if "embed" in bars else bars.setdefault("embed", bar("embedding"))
            b.total, b.n = p.total, p.done
            b.set_postfix(errors=p.errors, refresh=False)
            b.refresh()

    with graceful_interrupt() as should_stop:
        job = lib.index_job(folders, should_stop, batch_size, download_icloud=download_icloud, engine=engine)
        summary = drive(job, show) or IndexSummary()
    for b in bars.values():
        b.close()
    say(
        f"indexed: {summary.embedded} embedded, {summary.added} new, {summary.updated} changed, "
        f"{summary.moved} moved, {summary.missing} missing, {summary.skipped} unchanged, {summary.errors} errors"
        + (f", {summary.in_cloud} in iCloud (not downloaded)" if summary.in_cloud else "")
        + (f"; {summary.other_files} other files (not images) passed over" if summary.other_files else "")
        + (" (stopped early; rerun to continue)" if summary.stopped else "")
    )
    for note in summary.notes:
        say(note)
    for root in summary.offline_roots:
        say(f"offline: {root} (unreadable or unmounted; its photos are kept, none marked missing)")
    return summary


def stopped_note(stop: StopRequest, summary: IndexSummary) -> str:
    return (
        f"fovea: stopped by {stop.name}: {summary.embedded} images embedded this run are saved; "
        "run the same command again to continue"
    )


def cluster_engine(args: argparse.Namespace) -> EmbedEngine | None:
    """The Ray engine for `--engine ray` (imported only then: the `cluster` extra is optional)."""
    if args.engine != "ray":
        if args.address or args.path_map:
            raise UsageError("--address and --path-map go with --engine ray")
        return None
    from app.core.cluster import ClusterOptions, RayEngine
    from app.core.path_map import PathMap

    engine = RayEngine(ClusterOptions(args.address, PathMap.parse(args.path_map), backend=args.backend))
    engine.start()  # Ray missing or the address wrong: fail before the scan
    say(f"embedding on Ray at {args.address or 'a local instance'}; this process stores the results")
    return engine


def run(args: argparse.Namespace) -> int:
    folders = [Path(f).expanduser() for f in args.folders]
    for f in folders:
        if not f.is_dir():
            raise UsageError(f"{f}: not a folder")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    with open_library(args) as lib, graceful_interrupt() as stop:
        lib.embedder()  # a model that cannot be opened fails before the scan
        engine = cluster_engine(args)
        demo_notice(lib, [f.resolve() for f in folders])
        from app.core.settings import Settings

        icloud = args.download_icloud or Settings.load().download_icloud
        summary = run_index(lib, [f.resolve() for f in folders], args.batch_size, icloud, engine)
        if summary.errors:
            for path, reason, _ in lib.errors(limit=20):
                say(f"error: {path}: {reason}")
            if summary.errors > 20:
                say(f"... and {summary.errors - 20} more (fovea status --json lists them all)")
        if stop():
            say(stopped_note(stop, summary))
            return stop.exit_code
        if args.watch:
            from app.commands.watch import watch

            return watch(lib, folders)
    return 0
