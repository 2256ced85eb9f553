"""`fovea search`, `fovea similar` and `fovea duplicates`."""

from __future__ import annotations

import argparse

from app.commands.context import embedder, open_store, print_json
from app.core.errors import UsageError


def _tags_for(store, ids: list[int]) -> dict[int, list[str]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    out: dict[int, list[str]] = {}
    for i, label in store.conn.execute(
        f"SELECT image_id, label FROM tags WHERE image_id IN ({marks}) AND status IN ('auto', 'confirmed') "
        "ORDER BY score DESC",
        ids,
    ):
        out.setdefault(int(i), []).append(label)
    return out


def _hit_json(h, tags: dict[int, list[str]]) -> dict:
    d = h.to_json() if hasattr(h, "to_json") else {"path": str(h.path), "score": h.score, "weak": h.weak}
    if tags.get(h.image_id):
        d["tags"] = tags[h.image_id]
    return d


def _print(result, store, as_json: bool) -> None:
    tags = _tags_for(store, [h.image_id for h in result.hits])
    if as_json:
        print_json([_hit_json(h, tags) for h in result.hits])
        return
    if result.no_strong_match and result.hits:
        print("(no strong match: these are the closest images)")
    if not result.hits:
        print("no results")
    for h in result.hits:
        extra = f"  [{', '.join(tags[h.image_id])}]" if tags.get(h.image_id) else ""
        caption = getattr(h, "caption", None)
        print(
            f"{h.score:.3f}{'*' if h.weak else ' '} {h.path}{extra}"
            + (f"\n       {caption}" if caption else "")
        )


def _check_k(k: int) -> None:
    if k < 1:
        raise UsageError("-k must be at least 1")


def run(args: argparse.Namespace) -> int:
    from app.core.search import SearchEngine

    with open_store(args) as store:
        emb = embedder(args)
        if args.command == "duplicates":
            from app.core.duplicates import find_duplicates

            if not 0.0 < args.threshold <= 1.0:
                raise UsageError("--threshold must be in (0, 1]")
            groups = find_duplicates(store, emb.model_id, args.threshold)
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
        _check_k(args.k)
        engine = SearchEngine(store, emb)
        if args.command == "similar":
            result = engine.similar(args.image, k=args.k)
        else:
            from app.core.hybrid import hybrid_search

            filters = {
                "folder": args.folder,
                "date_from": args.date_from,
                "date_to": args.date_to,
                "camera": args.camera,
                "tag": args.tag,
            }
            result = hybrid_search(
                engine,
                store,
                args.terms,
                args.k,
                dense_only=args.dense_only,
                **{k: v for k, v in filters.items() if v},
            )
        _print(result, store, args.json)
    return 0
