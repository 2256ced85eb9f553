"""`fovea search`, `fovea similar` and `fovea duplicates`."""

from __future__ import annotations

import argparse
import shlex

from app.commands.context import open_library, print_json
from app.core.contracts import Filters


def _print(result, as_json: bool) -> None:
    if as_json:
        print_json([h.to_json() for h in result.hits])
        return
    if result.no_strong_match and result.hits:
        print("(no strong match: these are the closest images)")
    if not result.hits:
        print("no results")
    for h in result.hits:
        extra = f"  [{', '.join(h.tags)}]" if h.tags else ""
        print(
            f"{h.score:.3f}{'*' if h.weak else ' '} {h.path}{extra}"
            + (f"\n       {h.caption}" if h.caption else "")
        )


def filters(args: argparse.Namespace) -> Filters:
    return Filters(args.folder, args.date_from, args.date_to, args.camera, args.tag)


def run(args: argparse.Namespace) -> int:
    with open_library(args) as lib:
        if args.command == "duplicates":
            groups = lib.duplicates(args.threshold)
            if args.json:
                print_json(
                    [{"kind": g.kind, "score": g.score, "paths": [str(p) for p in g.paths]} for g in groups]
                )
            else:
                for g in groups:
                    print(f"{g.kind} ({g.score:.3f}):")
                    for p in g.paths:
                        print(f"  {p}")
                if not groups:
                    print("no duplicates")
            return 0
        if args.command == "similar":
            result = lib.similar(args.image, k=args.k)
        else:
            # The words typed are lexed like the window's search line: `red circle` is one term.
            line = shlex.join(args.terms)
            result = lib.search(line, filters(args), args.k, dense_only=args.dense_only)
        _print(result, args.json)
    return 0
