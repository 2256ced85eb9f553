"""`fovea search`, `fovea similar` and `fovea duplicates`."""

from __future__ import annotations

import argparse
import shlex

from app.commands.context import demo_notice, open_library, print_json
from app.core.contracts import Filters

WEAK_HELP = (
    "A '*' after a score marks a weak match: below what this model scores for a real match, or the "
    "query holds words the model does not know. Weak hits are shown, not dropped; `--json` gives "
    '"weak" per hit and "no_strong_match" and "reason" for the query.'
)
WEAK_FOOTER = "* weak match: probably not what you asked for (see `fovea search --help`)"


def _print(result, query: str, as_json: bool) -> None:
    if as_json:
        print_json(result.to_json(query))
        return
    if result.no_strong_match and result.hits:
        why = f"{result.reason}; " if result.reason else ""
        print(f"(no strong match: {why}these are the closest images)")
    if not result.hits:
        print("no results")
    for h in result.hits:
        extra = f"  [{', '.join(h.tags)}]" if h.tags else ""
        print(
            f"{h.score:.3f}{'*' if h.weak else ' '} {h.path}{extra}"
            + (f"\n       {h.caption}" if h.caption else "")
        )
    if any(h.weak for h in result.hits):
        print(WEAK_FOOTER)


def filters(args: argparse.Namespace) -> Filters:
    return Filters(args.folder, args.date_from, args.date_to, args.camera, args.tag)


def run(args: argparse.Namespace) -> int:
    with open_library(args, read_only=True) as lib:
        lib.require_images()
        demo_notice(lib)
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
            result, query = lib.similar(args.image, k=args.k), args.image
        else:
            # The words typed are lexed like the window's search line: `red circle` is one term.
            query = shlex.join(args.terms)
            result = lib.search(query, filters(args), args.k, dense_only=args.dense_only)
        _print(result, " ".join(args.terms) if args.command == "search" else query, args.json)
    return 0
