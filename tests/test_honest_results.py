"""Honest results through the CLI: words the model cannot know, read-only reads, helpful errors, the demo notice."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.core.demo import DEMO_MODEL_NOTICE, write_demo_library
from app.core.paths import demo_model_dir
from app.core.store import Store
from app.core.vocabulary import model_vocabulary

pytestmark = pytest.mark.skipif(not demo_model_dir().is_dir(), reason="the bundled demo model is missing")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("honest")
    photos = root / "shapes"
    for _ in write_demo_library(photos, n=24, seed=31):
        pass
    data = root / "data"
    os.environ["FOVEA_DATA_DIR"] = str(data)
    db = root / "lib.sqlite"
    assert main(["--db", str(db), "--backend", "mlx", "index", str(photos)]) == 0
    return {"root": root, "photos": photos, "db": db, "data": data}


def fovea(lib, capsys, *args: str, db: Path | None = None) -> tuple[int, str, str]:
    os.environ["FOVEA_DATA_DIR"] = str(lib["data"])
    capsys.readouterr()
    code = main(["--db", str(db or lib["db"]), "--backend", "mlx", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- 1. what the model cannot know -----------------------------------------------------------------


@pytest.mark.parametrize(
    "query, unknown", [("a dog", "dog"), ("zzzz qqq", "zzzz, qqq"), ("a red dog", "dog")]
)
def test_words_the_demo_model_never_saw_flag_every_hit_with_the_reason(lib, capsys, query, unknown):
    code, out, _ = fovea(lib, capsys, "search", query, "-k", "4", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["query"] == query and answer["no_strong_match"] is True
    assert answer["reason"] == f"the model does not know: {unknown}"
    assert len(answer["hits"]) == 4 and all(h["weak"] for h in answer["hits"])
    code, out, _ = fovea(lib, capsys, "search", query, "-k", "2")
    lines = out.splitlines()
    assert lines[0] == f"(no strong match: the model does not know: {unknown}; these are the closest images)"
    assert lines[-1].startswith("* weak match") and all("*" in line.split()[0] for line in lines[1:-1])


def test_known_words_carry_no_unknown_word_reason(lib, capsys):
    code, out, _ = fovea(lib, capsys, "search", "a red circle", "-red dog", "-k", "3", "--json")
    answer = json.loads(out)
    assert code == 0 and "does not know" not in (answer["reason"] or "")  # a negative term only steers away


def test_open_vocabulary_tokenizers_report_nothing_closed_ones_their_unknown_token(tmp_path):
    from tests.builders.clip import make_clip_checkpoint
    from tests.builders.siglip import make_siglip_checkpoint

    clip = model_vocabulary(make_clip_checkpoint(tmp_path / "clip"))
    # Byte-level BPE spells any word out: an open vocabulary, nothing to report.
    assert clip.unknown_words(["a dog", "zzzz qqq", "东京 🦄"]) == ()
    siglip = model_vocabulary(make_siglip_checkpoint(tmp_path / "siglip"))
    # The sentencepiece model saw no Cyrillic: those words map to <unk>; its own words do not.
    assert siglip.unknown_words(["a photo of a cat", "кошка на пляже"]) == ("кошка", "на", "пляже")
    demo = model_vocabulary(demo_model_dir())
    assert demo.unknown_words(["a photo of a red circle", "a cat at the beach"]) == ("cat", "beach")


def test_a_wordpiece_tokenizer_maps_unknown_words_to_its_unknown_token():
    from mlx_models.clip.tokenizer import Tokenizer

    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import pre_tokenizers
    from tokenizers.models import WordPiece

    from app.core.vocabulary import ModelVocabulary

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "a", "photo", "of", "cat", "##s"])}
    hf = HFTokenizer(WordPiece(vocab, unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = Tokenizer(hf, pad_token="[PAD]", max_length=16)
    check = ModelVocabulary(maps_to_unknown=tok.maps_to_unknown)
    assert check.unknown_words(["a photo of cats", "a photo of a zebra"]) == ("zebra",)


def test_labels_the_model_cannot_read_are_never_auto_applied_and_flagged_in_review(lib, capsys, tmp_path):
    db = tmp_path / "t.sqlite"
    shutil.copy(lib["db"], db)
    labels = tmp_path / "labels.txt"
    labels.write_text("red circle\nblue square\ngreen star\ndog\ncat\n")
    code, _, err = fovea(lib, capsys, "tag", "--labels", str(labels), db=db)
    assert code == 0 and "does not know the words of 2 labels (cat, dog)" in err
    _, out, _ = fovea(lib, capsys, "tags", "list", "--json", db=db)
    rows = json.loads(out)
    assert any(
        r["label"] in ("dog", "cat") for r in rows
    )  # scored (in review), so there is something to flag
    assert not [r for r in rows if r["label"] in ("dog", "cat") and r["status"] == "auto"]
    assert any(r["status"] == "auto" for r in rows)  # known labels still apply
    _, out, _ = fovea(lib, capsys, "tags", "review", "--json", db=db)
    cands = [c for item in json.loads(out) for c in item["candidates"]]
    unread = [c for c in cands if c["label"] in ("dog", "cat")]
    assert unread and all(
        c["weak"] and c["reason"] == f"the model does not know: {c['label']}" for c in unread
    )
    assert not [c for c in cands if c["label"] not in ("dog", "cat") and "weak" in c]


# ---- 3. the demo model on photos ---------------------------------------------------------------


def test_the_demo_model_on_a_non_demo_library_says_so_once_on_stderr(lib, capsys, tmp_path):
    photos = tmp_path / "my photos"
    photos.mkdir()
    shutil.copy(next(lib["photos"].glob("*.jpg")), photos / "holiday.jpg")  # no demo manifest: "photos"
    db = tmp_path / "mine.sqlite"
    code, _, err = fovea(lib, capsys, "index", str(photos), db=db)
    assert code == 0 and err.count(DEMO_MODEL_NOTICE) == 1
    code, _, err = fovea(lib, capsys, "search", "a red circle", db=db)
    assert (
        code == 0 and err.count(DEMO_MODEL_NOTICE) == 1 and err.startswith("note: The demo model only knows")
    )
    _, _, err = fovea(lib, capsys, "search", "a red circle")  # the demo scenes themselves: nothing to say
    assert DEMO_MODEL_NOTICE not in err
    readme = (ROOT / "README.md").read_text()
    first_section = readme.split("\n## ")[0]
    assert "fovea demo" in first_section and "only knows coloured shapes" in first_section


# ---- 4. a CLI that helps -----------------------------------------------------------------------


def test_reads_never_create_a_library_and_say_how_to_make_one(lib, capsys, tmp_path):
    missing = tmp_path / "typo.sqlite"
    code, _, err = fovea(lib, capsys, "search", "a red circle", db=missing)
    assert code == 1 and "no library at" in err and "fovea index FOLDER" in err and not missing.exists()
    code, out, _ = fovea(lib, capsys, "status", db=missing)
    assert code == 0 and "fovea index FOLDER" in out and not missing.exists()
    empty = tmp_path / "empty.sqlite"
    Store(empty).close()
    code, _, err = fovea(lib, capsys, "search", "a red circle", db=empty)
    assert code == 1 and "has no images yet" in err and "`fovea index FOLDER`" in err


def test_a_read_only_library_can_be_searched_listed_and_stays_unchanged(lib, capsys, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    db = ro / "lib.sqlite"
    with sqlite3.connect(lib["db"]) as src, sqlite3.connect(db) as dst:
        src.backup(dst)  # one self-contained file, no -wal beside it
    before = digest(db)
    db.chmod(0o444)
    ro.chmod(0o555)
    try:
        for args in (["search", "a red circle", "--json"], ["status", "--json"], ["tags", "list", "--json"]):
            code, out, err = fovea(lib, capsys, *args, db=db)
            assert code == 0, (args, err)
            json.loads(out)
        with pytest.raises(sqlite3.OperationalError):  # query_only: even root cannot write through it
            Store(db, read_only=True).conn.execute("DELETE FROM images")
    finally:
        ro.chmod(0o755)
        db.chmod(0o644)
    wal = ro / "lib.sqlite-wal"  # SQLite may open its WAL sidecars (root can, here); nothing is written
    assert digest(db) == before and (not wal.exists() or wal.stat().st_size == 0)


@pytest.mark.parametrize(
    "flag, value", [("--from", "yesterday"), ("--to", "2023-13"), ("--from", "2023-02-30")]
)
def test_a_bad_date_is_a_usage_error_listing_the_accepted_forms(lib, capsys, flag, value):
    code, _, err = fovea(lib, capsys, "search", "a red circle", flag, value)
    assert code == 2 and "YYYY-MM-DD" in err and value in err and len(err.strip().splitlines()) == 1


def test_a_closed_pipe_ends_quietly_with_0(lib):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as after `| head -1`
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FOVEA_DATA_DIR": str(lib["data"])}
    r = subprocess.run(
        [sys.executable, "-m", "app", "--db", str(lib["db"]), "status", "--json"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(write_end)
    assert r.returncode == 0 and r.stderr == b""


def test_help_explains_the_weak_marker_and_lists_every_action(capsys):
    for args, words in (
        (["search", "--help"], ["weak match", "no_strong_match"]),
        (["tags", "--help"], ["list", "review", "confirm", "reject", "calibrate"]),
        (["models", "--help"], ["list", "pull", "convert"]),
    ):
        with pytest.raises(SystemExit) as e:
            main(args)
        text = " ".join(capsys.readouterr().out.split())
        assert e.value.code == 0 and all(w in text for w in words), (args, text)
    with pytest.raises(SystemExit):
        main(["tags", "--help"])
    actions = capsys.readouterr().out.split("ACTION", 2)[-1]
    for action in ("list", "review", "confirm", "reject", "calibrate"):
        assert f"\n    {action}" in actions  # each with its own help line


def test_a_folder_that_is_not_a_model_says_so_and_lists_what_would_be(lib, capsys, tmp_path):
    code, _, err = fovea(lib, capsys, "--model", str(tmp_path), "search", "a red circle")
    assert code == 2 and "not a model folder (no config.json)" in err and "demo" in err


def test_a_corrupt_library_says_what_to_do_and_is_left_alone(lib, capsys, tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite " * 100)
    before = digest(bad)
    for args in (["search", "a red circle"], ["index", str(lib["photos"])]):
        code, _, err = fovea(lib, capsys, *args, db=bad)
        assert code == 1 and "file is not a database" in err and "`fovea doctor --repair`" in err
    assert digest(bad) == before


def test_status_numbers_add_up_with_a_missing_file(lib, capsys, tmp_path):
    photos = tmp_path / "shapes"
    shutil.copytree(lib["photos"], photos)
    db = tmp_path / "s.sqlite"
    assert fovea(lib, capsys, "index", str(photos), db=db)[0] == 0
    next(photos.glob("0001-*.jpg")).unlink()
    assert fovea(lib, capsys, "index", str(photos), db=db)[0] == 0
    code, out, _ = fovea(lib, capsys, "status", db=db)
    line = next(x for x in out.splitlines() if x.startswith("images:"))
    total = int(line.split()[1])
    parts = line.split("(", 1)[1].split(")", 1)[0].split(", ")
    assert code == 0 and total == sum(int(p.split()[0]) for p in parts) == 24 - 1
    assert "1 more missing from disk" in line
