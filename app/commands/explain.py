"""`fovea explain IMAGE QUERY...`: where in the photo the match with the query comes from."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from app.commands.context import embedder, err, print_json
from app.commands.progress import graceful_interrupt
from app.core.decode import open_image
from app.core.errors import FoveaError
from app.core.explain import explain, heat_image
from app.core.query import embed_query, parse_query


def run(args: argparse.Namespace) -> int:
    terms = parse_query(args.terms)  # a bad query is a usage error before any model loads
    image = open_image(Path(args.image).expanduser()).image  # a broken file: exit 1 with its reason
    emb = embedder(args)
    query = embed_query(emb, terms)
    with (
        graceful_interrupt() as should_stop,
        tqdm(desc="explain", unit="copy", file=sys.stderr, disable=None, leave=False) as bar,
    ):
        gen = explain(emb, image, query, should_stop=should_stop)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            bar.total = p.total
            bar.update(p.done - bar.n)
    if result is None:
        raise FoveaError("stopped before the map was complete")
    if args.out:
        out = Path(args.out).expanduser()
        if out.resolve() == Path(args.image).expanduser().resolve():
            raise FoveaError(f"{out}: refusing to overwrite the photo itself")
        try:
            heat_image(image, result).save(out)
        except (OSError, ValueError) as e:
            raise FoveaError(f"{out}: cannot write the map ({e})") from e
    query_text = args.terms[0] if len(args.terms) == 1 else list(args.terms)
    if args.json:
        print_json(result.to_json(query_text))
    else:
        x, y = result.peak
        print(f"score {result.score:.3f}; strongest evidence at x={x:.2f}, y={y:.2f} of the photo")
        for row in result.grid:
            print(" ".join(f"{v:+.3f}" for v in row))
        if args.out:
            err(f"map written to {args.out}")
    return 0
