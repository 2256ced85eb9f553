"""`fovea status`: counts, per-file errors, roots, models, runtime."""

from __future__ import annotations

import argparse

from app.commands.context import open_library, print_json


def run(args: argparse.Namespace) -> int:
    with open_library(args) as lib:
        info = lib.status().to_json()
    if args.json:
        print_json(info)
        return 0
    print(f"library: {info['db']}")
    by = info["by_status"]
    print(
        f"images: {info['images']} ({by.get('ok', 0)} indexed, {by.get('error', 0)} errors, "
        f"{by.get('pending', 0)} pending, {by.get('missing', 0)} missing)"
    )
    for r in info["roots"]:
        print(f"root: {r['path']} [{r['state']}]")
    for m in info["models"]:
        print(f"embeddings: {m['model_id']}: {m['images']}")
    tags = info["tags"]["by_status"]
    if any(tags.values()):
        print("tags: " + ", ".join(f"{n} {s}" for s, n in tags.items()))
    rt = info["runtime"]
    print(f"runtime: mlx on {rt['mlx_device']}; {rt['blas']}")
    for e in info["errors"][:20]:
        print(f"error: {e['path']}: {e['reason']}")
    if len(info["errors"]) > 20:
        print(f"... {len(info['errors']) - 20} more errors (--json lists all)")
    return 0
