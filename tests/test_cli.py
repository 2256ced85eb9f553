"""The `fovea` CLI contract end to end on the bundled demo model: JSON shapes, exit codes, broken files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from app.core.demo import write_demo_library
from app.core.paths import demo_model_dir
from app.core.scenes import make_scenes

pytestmark = pytest.mark.skipif(not demo_model_dir().is_dir(), reason="the bundled demo model is missing")


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("cli")
    lib = root / "photos"
    for _ in write_demo_library(lib, n=40, seed=77):
        pass
    (lib / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    shutil.copy(next(lib.glob("0003-*.jpg")), lib / "copy of 0003.jpg")  # an exact duplicate
    captions = json.loads((lib / "captions.json").read_text())
    with pytest.MonkeyPatch.context() as mp:  # the module's user data directory, restored afterwards
        mp.setenv("FOVEA_DATA_DIR", str(root / "data"))
        yield {"root": root, "lib": lib, "db": str(root / "lib.sqlite"), "captions": captions}


def fovea(library, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--db", library["db"], "--backend", "mlx", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def indexed(library):
    assert (
        main(["--db", library["db"], "--backend", "mlx", "index", str(library["lib"])]) == 0
    )  # broken file: still 0
    return library


def test_index_reports_the_broken_file_and_status_lists_it(indexed, capsys):
    code, out, _ = fovea(indexed, capsys, "status", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["images"] == 42 and info["by_status"]["ok"] == 41
    assert [Path(e["path"]).name for e in info["errors"]] == ["broken.jpg"] and info["errors"][0]["reason"]
    assert info["roots"] == [{"path": str(indexed["lib"].resolve()), "state": "online"}]


def test_search_json_lists_hits_best_first_and_finds_what_the_query_names(indexed, capsys):
    code, out, _ = fovea(indexed, capsys, "search", "a red circle", "-k", "5", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["query"] == "a red circle" and set(answer) == {"query", "no_strong_match", "reason", "hits"}
    hits = answer["hits"]
    assert len(hits) == 5 and all({"path", "score", "weak"} <= set(h) for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    # For every colour+shape drawn alone somewhere in the library, "a <colour> <shape>" should find a scene
    # holding it first; the demo model classifies such scenes 90% right, so most queries must land.
    scenes = make_scenes(77, 40)
    classes = sorted({(s.shapes[0].colour, s.shapes[0].kind) for s in scenes if len(s.shapes) == 1})
    right = 0
    for colour, kind in classes:
        _, out, _ = fovea(indexed, capsys, "search", f"a {colour} {kind}", "-k", "1", "--json")
        name = Path(json.loads(out)["hits"][0]["path"]).name
        right += name[:4].isdigit() and scenes[int(name[:4])].contains(colour, kind)
    assert len(classes) >= 8 and right / len(classes) >= 0.75, (right, len(classes))


# What a `fovea search` process must not import: torch (the `auto` backend decides without it), the
# GUI, and the decoders, taggers, indexer and worker pools a text search never runs (each one is start-up
# time a search would pay for nothing; importlib.metadata alone pulls in email and zipfile).
SEARCH_NEVER_IMPORTS = (
    "torch",
    "transformers",
    "PySide6",
    "app.gui",
    "app.core.decode",
    "app.core.decode_pool",
    "app.core.indexer",
    "app.core.tagging",
    "app.core.captions",
    "app.core.explain",
    "app.core.duplicates",
    "app.core.exact_index",
    "pillow_heif",
    "pillow_jxl",
    "rawpy",
    "tifffile",
    "multiprocessing",
    "concurrent.futures",
    "importlib.metadata",
    "email",
)


def test_search_process_never_imports_torch_or_modules_it_does_not_need(indexed):
    # torch is installed in the dev environment; without an NVIDIA driver `auto` must not import it.
    # The process starts as the installed command does (`python -m app`), backend `auto`.
    argv = ["fovea", "--db", str(indexed["db"]), "search", "a red circle", "-k", "3", "--json"]
    code = (
        "import runpy, sys; "
        f"sys.argv = {argv!r}; "
        "rc = 0\n"
        "try:\n    runpy.run_module('app', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as e:\n    rc = e.code\n"
        f"heavy = [m for m in {SEARCH_NEVER_IMPORTS!r} if m in sys.modules]\n"
        "print('IMPORTED', ','.join(heavy) or '-', rc)"
    )
    env = {**os.environ, "FOVEA_DATA_DIR": str(indexed["root"] / "data")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["IMPORTED", "-", "0"], out.stdout[-300:]
    assert json.loads(out.stdout[: out.stdout.rindex("IMPORTED")])["hits"]  # the hits were printed


def test_negative_terms_need_no_double_dash_and_change_the_ranking(indexed, capsys):
    _, plain, _ = fovea(indexed, capsys, "search", "circle", "-k", "10", "--json")
    code, minus, _ = fovea(indexed, capsys, "search", "circle", "-red", "-k", "10", "--json")
    assert code == 0
    red = {n for n, caps in indexed["captions"].items() if any(re.search(r"\bred\b", c) for c in caps)}
    reds = lambda hits: sum(Path(h["path"]).name in red for h in hits)  # noqa: E731
    assert reds(json.loads(minus)["hits"]) < reds(json.loads(plain)["hits"])


def test_similar_and_duplicates(indexed, capsys):
    probe = next(indexed["lib"].glob("0003-*.jpg"))
    code, out, _ = fovea(indexed, capsys, "similar", str(probe), "-k", "3", "--json")
    assert code == 0
    hits = json.loads(out)["hits"]
    assert hits[0]["path"].endswith("copy of 0003.jpg") and hits[0]["score"] > 0.999
    assert str(probe) not in [h["path"] for h in hits]
    code, out, _ = fovea(indexed, capsys, "duplicates", "--json")
    exact = [g for g in json.loads(out) if g["kind"] == "exact"]
    assert (
        code == 0
        and len(exact) == 1
        and {Path(p).name for p in exact[0]["paths"]} == {probe.name, "copy of 0003.jpg"}
    )


def test_tagging_then_list_and_a_decision(indexed, capsys):
    assert fovea(indexed, capsys, "tag")[0] == 0
    code, out, _ = fovea(indexed, capsys, "tags", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and rows and all(set(r) == {"path", "label", "score", "status"} for r in rows)
    target = rows[0]
    assert fovea(indexed, capsys, "tags", "reject", target["path"], target["label"])[0] == 0
    _, out, _ = fovea(indexed, capsys, "tags", "list", "--status", "rejected", "--json")
    assert [(r["path"], r["label"]) for r in json.loads(out)] == [(target["path"], target["label"])]


@pytest.mark.parametrize(
    "args",
    [
        ["search", "x", "-k", "0"],
        ["index", "/no/such/folder"],
        ["duplicates", "--threshold", "2"],
        ["tags", "confirm", "/nope.jpg", "cat"],
    ],
)
def test_bad_usage_exits_2_with_one_line(indexed, capsys, args):
    code, _, err = fovea(indexed, capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("fovea: ")
