"""`fovea status`: counts, per-file errors, roots, models, runtime."""

from __future__ import annotations

import argparse

from app.commands.context import db_path, open_store, print_json
from app.core.model_registry import resolve_model


def collect(store, model: str | None) -> dict:
    counts = store.status_counts()
    models = [
        {"model_id": m, "images": n}
        for m, n in store.conn.execute("SELECT model_id, count(*) FROM embeddings GROUP BY model_id")
    ]
    import mlx_models.runtime as rt

    from app.core.tag_store import tag_counts

    return {
        "images": sum(n for s, n in counts.items() if s != "missing"),
        "by_status": counts,
        "errors": [{"path": str(p), "reason": r, "time": t} for p, r, t in store.errors()],
        "roots": [{"path": str(p), "state": s} for _, p, s in store.roots()],
        "models": models,
        "model": str(resolve_model(model)),
        "tags": tag_counts(store).to_json(),
        "runtime": {"mlx_device": rt.device_name(), "openblas": rt.BLAS.openblas, "blas": rt.BLAS.reason},
    }


def run(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        info = collect(store, args.model)
    info["db"] = str(db_path(args))
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
