"""`fovea explain IMAGE TERM...`: where in the photo the match with the query comes from."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from app.commands.context import err, open_library, print_json
from app.commands.progress import graceful_interrupt
from app.core.decode import open_image
from app.core.errors import FoveaError
from app.core.explain import heat_image


def run(args: argparse.Namespace) -> int:
    photo = Path(args.image).expanduser()
    out = Path(args.out).expanduser() if args.out else None
    if out is not None and out.resolve() == photo.resolve():
        raise FoveaError(f"{out}: refusing to overwrite the photo itself")
    with (
        open_library(args) as lib,
        graceful_interrupt() as should_stop,
        tqdm(desc="explain", unit="copy", file=sys.stderr, disable=None, leave=False) as bar,
    ):
        gen = lib.explain_job(photo, args.terms, should_stop)
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
    if out is not None:
        try:
            heat_image(open_image(photo).image, result).save(out)
        except (OSError, ValueError) as e:
            raise FoveaError(f"{out}: cannot write the map ({e})") from e
    if args.json:
        print_json(result.to_json(args.terms[0] if len(args.terms) == 1 else list(args.terms)))
        return 0
    x, y = result.peak
    print(f"score {result.score:.3f}; strongest evidence at x={x:.2f}, y={y:.2f} of the photo")
    for row in result.grid:
        print(" ".join(f"{v:+.3f}" for v in row))
    if out is not None:
        err(f"map written to {out}")
    return 0
