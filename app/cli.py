"""The `fovea` command: parses arguments, runs a core job, prints results. Only here (and the GUI) print or exit."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from app.core.errors import FoveaError, UsageError


class _VersionAction(argparse.Action):
    """`--version`, reading the installed version only when asked (importlib.metadata is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import app

        print(f"fovea {app.__version__}")  # on stdout, like argparse's own version action
        parser.exit()


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fovea",
        description="On-device visual search for photo libraries.",
        epilog="Exit codes: 0 success, 1 failure (one-line reason on stderr), 2 bad usage.",
    )
    p.add_argument("--version", action=_VersionAction, help="show the version and exit")
    p.add_argument("--db", help="library database (default: the per-user library)")
    p.add_argument("--model", help="model name or folder (default: the bundled demo model)")
    p.add_argument("--backend", default="auto", choices=["auto", "mlx", "torch"], help="embedding backend")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("gui", help="open the window (the default command)")
    g.add_argument("folder", nargs="?", help="a folder to add as a library")

    d = sub.add_parser("demo", help="bundled demo library and model, offline")
    d.add_argument("--no-gui", action="store_true", help="index and run a few searches in the terminal")

    i = sub.add_parser("index", help="add folders and (re)index them; broken files are recorded, not fatal")
    i.add_argument("folders", nargs="+", metavar="FOLDER")
    i.add_argument("--batch-size", type=int, default=32)
    i.add_argument("--watch", action="store_true", help="keep following changes (needs watchdog)")
    i.add_argument(
        "--download-icloud",
        action="store_true",
        help="read iCloud files that are not on this Mac (downloads them; default: record and skip)",
    )
    i.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="ray: decode and embed on a Ray cluster (pip install -e '.[cluster]'; docs/CLUSTER.md)",
    )
    i.add_argument("--address", help="the Ray cluster to use (default: start one on this machine)")
    i.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="LOCAL=REMOTE",
        help="workers see LOCAL (photos, the model) at REMOTE; repeatable",
    )

    from app.commands.search import WEAK_HELP
    from app.core.query import DATE_FORMS

    s = sub.add_parser(
        "search",
        help='rclip-style terms: "text", "+text", "-text", "2:text", an image path',
        epilog=WEAK_HELP,
    )
    s.add_argument("terms", nargs="*", metavar="TERM", help='a "-text" term may also follow --')
    s.add_argument("-k", type=int, default=10, help="number of results")
    s.add_argument("--tag", help="only images with this tag")
    s.add_argument("--folder", help="only images under this folder")
    s.add_argument("--from", dest="date_from", help=f"taken on or after: {DATE_FORMS}")
    s.add_argument("--to", dest="date_to", help="taken on or before (inclusive at its precision)")
    s.add_argument("--camera", help="camera model contains this text")
    s.add_argument("--dense-only", action="store_true", help="ignore captions; embeddings only")
    _add_json(s)

    si = sub.add_parser("similar", help="images similar to IMAGE", epilog=WEAK_HELP)
    si.add_argument("image")
    si.add_argument("-k", type=int, default=10)
    _add_json(si)

    du = sub.add_parser("duplicates", help="exact and near-duplicate groups")
    du.add_argument("--threshold", type=float, default=0.95, help="cosine for near duplicates")
    _add_json(du)

    e = sub.add_parser("embed", help="write L2-normalised float32 rows, images first, in order")
    e.add_argument("--image", action="append", default=[], metavar="FILE")
    e.add_argument("--text", action="append", default=[], metavar="TEXT")
    e.add_argument("--out", required=True, metavar="FILE.npy")

    x = sub.add_parser("explain", help="heat map of where in IMAGE the match with the query comes from")
    x.add_argument("image", metavar="IMAGE")
    x.add_argument(
        "terms", nargs="*", metavar="TERM", help='query terms as for search; "-text" also after --'
    )
    x.add_argument("--out", metavar="MAP.png", help="write the photo with the map blended over it")
    _add_json(x)

    t = sub.add_parser("tag", help="zero-shot tag the library (abstains when unsure)")
    t.add_argument("--labels", help="vocabulary file, one label per line (default: the bundled one)")
    t.add_argument("--min-score", type=float)
    t.add_argument("--min-margin", type=float)

    ts = sub.add_parser("tags", help="list, review, confirm, reject, calibrate tags")
    tsub = ts.add_subparsers(dest="tags_command", metavar="ACTION")
    tl = tsub.add_parser("list", help="tags with their scores and status (the default action)")
    tl.add_argument("--status", choices=["auto", "review", "confirmed", "rejected"])
    tl.add_argument("--label")
    _add_json(tl)
    tr = tsub.add_parser("review", help="the review queue with top candidates")
    _add_json(tr)
    for name in ("confirm", "reject"):
        x = tsub.add_parser(
            name, help=f"{name} LABEL on the image at PATH (a decision calibrate learns from)"
        )
        x.add_argument("path")
        x.add_argument("label")
    tc = tsub.add_parser("calibrate", help="fit per-label thresholds from your decisions")
    tc.add_argument("--labels", help="the vocabulary used for tagging (default: as for `fovea tag`)")
    _add_json(tc)

    c = sub.add_parser("caption", help="caption the library's images (background, resumable)")
    c.add_argument("--caption-model")
    c.add_argument("--limit", type=int)

    ci = sub.add_parser("caption-image", help="caption one image")
    ci.add_argument("image")
    ci.add_argument("--caption-model")
    ci.add_argument("--prompt", default="Describe this image in one sentence.")
    ci.add_argument("--max-tokens", type=int, default=64)
    ci.add_argument("--temperature", type=float, default=0.0)
    _add_json(ci)

    st = sub.add_parser("status", help="counts, errors, roots, models")
    _add_json(st)

    dr = sub.add_parser("doctor", help="check a library file; --repair salvages a damaged one")
    dr.add_argument(
        "library", nargs="?", metavar="DB", help="library file (default: --db or the per-user one)"
    )
    dr.add_argument("--repair", action="store_true", help="fix what the checks found; the old file is kept")
    _add_json(dr)

    m = sub.add_parser("models", help="list, pull or convert models")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION")
    ml = msub.add_parser("list", help="installed models and the ones `pull` knows")
    _add_json(ml)
    mp = msub.add_parser("pull", help="download a known checkpoint and convert it (needs the network)")
    mp.add_argument("name")
    mp.add_argument(
        "--dtype",
        choices=["float16", "float32"],
        help="weights (default: float16 on a Mac's GPU, else float32)",
    )
    mc = msub.add_parser("convert", help="convert a Hugging Face folder SRC into a model folder DST")
    mc.add_argument("src")
    mc.add_argument("dst")
    mc.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    mc.add_argument("--quantize", type=int, choices=[4, 8])
    mc.add_argument("--allow-pickle", action="store_true")
    mc.add_argument("--no-verify", action="store_true")
    return p


def _load_converter(kind: str):
    """The converter for a model kind; imported only when a conversion runs (torch is optional)."""
    if kind == "captioner":
        from converters.llava import convert_llava

        return convert_llava
    from converters.convert import convert

    return convert


def main(argv: Sequence[str] | None = None) -> int:
    from app.core.cache import hub_cache_env
    from app.core.model_install import register_converters

    hub_cache_env(os.environ)  # the packaged app keeps the hub's caches in Fovea's cache folder
    register_converters(_load_converter)  # the entry point wires converters/ into core (see model_install)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command in ("search", "explain"):
        # rclip-style negative terms ("-red") look like options to argparse: take them as terms.
        unknown = [t for t in extra if not t.startswith("-") or t.startswith("--")]
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.terms += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in ("search", "explain") and not args.terms:
        parser.error(f"{args.command} needs at least one TERM")
    if args.command is None:
        args.command, args.folder = "gui", None
    from app.commands import dispatch

    try:
        code = dispatch(args)
        sys.stdout.flush()  # inside the try: a reader that went away (`| head`) is handled below
        return code
    except BrokenPipeError:
        # Like other Unix tools: the reader has what it wanted. Point stdout at devnull so the
        # interpreter's own flush at exit does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UsageError as e:
        print(f"fovea: {e}", file=sys.stderr)
        return 2
    except FoveaError as e:
        print(f"fovea: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # a second stop signal: the batch in flight was rolled back
        from app.commands.progress import say

        say("fovea: interrupted; the batch in flight was rolled back, everything before it is kept")
        return 128 + getattr(e, "signum", 2)
    except Exception as e:  # a bug or an unforeseen condition: still one line (FOVEA_DEBUG=1 for the trace)
        if os.environ.get("FOVEA_DEBUG"):
            raise
        from app.core.faults import DiskFullError, is_disk_full, need_for

        if is_disk_full(e):  # a write path that did not say which volume: the file named, else the library's
            from app.commands.context import db_path

            where = getattr(e, "filename", None) or db_path(args)
            print(f"fovea: {DiskFullError(where, need_for(where), '')}", file=sys.stderr)
            return 1
        print(f"fovea: unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
