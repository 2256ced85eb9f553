"""`fovea status`: counts, per-file errors, roots, models, runtime."""

from __future__ import annotations

import argparse

from app.commands.context import db_path, open_library, print_json

STATUS_WORDS = {
    "ok": "indexed",
    "error": "errors",
    "pending": "pending",
    "cloud": "in iCloud, not downloaded",
}


def images_line(images: int, by_status: dict[str, int]) -> str:
    """ "images: N (parts)" whose parts add up to N; missing files are counted on their own."""
    parts = [f"{n} {STATUS_WORDS.get(s, s)}" for s, n in sorted(by_status.items()) if s != "missing" and n]
    line = f"images: {images}" + (f" ({', '.join(parts)})" if parts else "")
    if by_status.get("missing"):
        line += f"; {by_status['missing']} more missing from disk (kept until they come back)"
    return line


def run(args: argparse.Namespace) -> int:
    from app.core.store import NoLibraryError

    try:
        with open_library(args, read_only=True) as lib:
            info = lib.status().to_json()
    except NoLibraryError as e:  # nothing indexed yet is a state, not a failure
        if args.json:
            from app.core.runtime import runtime_info

            print_json(
                {
                    "db": str(db_path(args)),
                    "images": 0,
                    "errors": [],
                    "roots": [],
                    "note": str(e),
                    "runtime": runtime_info(),
                }
            )
        else:
            print(f"library: {db_path(args)} (none yet: run `fovea index FOLDER` to create it)")
        return 0
    if args.json:
        print_json(info)
        return 0
    print(f"library: {info['db']}")
    print(images_line(info["images"], info["by_status"]))
    for r in info["roots"]:
        print(f"root: {r['path']} [{r['state']}]")
    for m in info["models"]:
        print(f"embeddings: {m['model_id']}: {m['images']}")
    tags = info["tags"]["by_status"]
    if any(tags.values()):
        print("tags: " + ", ".join(f"{n} {s}" for s, n in tags.items()))
    rt = info["runtime"]
    state = "" if rt["mlx_device_ok"] else f" (cannot compute there: {rt['mlx_device_error']})"
    print(f"runtime: mlx on {rt['mlx_device']}{state}; {rt['blas']}")
    for e in info["errors"][:20]:
        print(f"error: {e['path']}: {e['reason']}")
    if len(info["errors"]) > 20:
        print(f"... {len(info['errors']) - 20} more errors (--json lists all)")
    return 0
