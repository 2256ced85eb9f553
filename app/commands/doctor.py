"""`fovea doctor [DB] [--repair] [--json]`: check a library file, and salvage it when asked."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.context import db_path, print_json
from app.core.cache import thumbnails_dir
from app.core.doctor import REPAIRABLE, DoctorReport, check
from app.core.errors import FoveaError


def _print(report: DoctorReport) -> None:
    print(f"library: {report.db}")
    for f in report.findings:
        mark = "ok  " if f.ok else "BAD " if f.check in REPAIRABLE or f.check == "schema" else "note"
        print(f"{mark} {f.check}: {f.detail}")
        if f.advice:
            print(f"    -> {f.advice}")


def run(args: argparse.Namespace) -> int:
    from app.core.salvage import repair

    path = Path(args.library).expanduser() if args.library else db_path(args)
    if not path.is_file():
        raise FoveaError(f"{path}: no library file there")
    thumbs = thumbnails_dir()  # the user cache folder (app.core.cache), where the window keeps them
    report = check(path, thumbs)
    result = after = None
    if args.repair and (
        report.needs_repair or any(f.check == "persisted_index" and not f.ok for f in report.findings)
    ):
        result = repair(path)
        after = check(path, thumbs)
    if args.json:
        print_json(
            {
                **report.to_json(),
                "repair": result.to_json() if result else None,
                "after": after.to_json() if after else None,
            }
        )
    else:
        _print(report)
        if result is not None:
            print(
                f"repaired ({result.method}): kept " + ", ".join(f"{n} {t}" for t, n in result.kept.items())
            )
            if result.removed:
                print(
                    "removed rows pointing at nothing: "
                    + ", ".join(f"{n} {t}" for t, n in result.removed.items())
                )
            if result.skipped_ranges:
                print(f"skipped {result.skipped_ranges} unreadable stretch(es) of the damaged file")
            if result.damaged_copy:
                print(f"the damaged file is kept at {result.damaged_copy}")
            if result.backup:
                print(f"a copy from before the repair is kept at {result.backup}")
            print(
                "images whose rows were lost are found again by the next `fovea index` (the photos are untouched)"
            )
            _print(after)
    final = after or report
    schema_ok = all(f.ok for f in final.findings if f.check == "schema")
    return 1 if final.needs_repair or not schema_ok else 0
