"""The caption job and commands: opt-in per library, resumable, per-file errors kept, CLI shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from app.core import text_index
from app.core.captions import (
    MAX_MODEL_FAILURES,
    CaptionSummary,
    caption_library,
    captioning_roots,
    set_captioning,
    uncaptioned_count,
)
from app.core.captions_backend import Captioner
from app.core.errors import BackendError, FoveaError
from app.core.indexer import index
from app.core.store import Store
from tests.builders.fake_captioner import FakeCaptioner
from tests.builders.fake_embedder import FakeEmbedder
from tests.builders.images import make_library
from tests.builders.jobs import collect


def run_job(store: Store, captioner, **kw) -> tuple[CaptionSummary, list]:
    summary, items = collect(caption_library(store, captioner, **kw))
    assert items[-1].phase == "done" and isinstance(summary, CaptionSummary)
    return summary, items


@pytest.fixture
def library(tmp_path) -> tuple[Store, Path, Path]:
    """Two indexed libraries of 6 and 3 photos; only the first opted in to captioning."""
    a, b = tmp_path / "a", tmp_path / "b"
    make_library(a, 6, seed=1)
    make_library(b, 3, seed=2)
    store = Store(tmp_path / "lib.sqlite")
    for _ in index(store, FakeEmbedder(), [a, b]):
        pass
    set_captioning(store, a, True)
    yield store, a, b
    store.close()


def captions(store: Store) -> dict[Path, tuple[str, str]]:
    rows = store.conn.execute(
        "SELECT i.path, c.model_id, c.text FROM captions c JOIN images i ON i.id = c.image_id"
    ).fetchall()
    return {Path(p): (m, t) for p, m, t in rows}


def test_fake_captioner_satisfies_the_protocol():
    assert isinstance(FakeCaptioner(), Captioner)


def test_only_opted_in_libraries_are_captioned(library):
    store, a, b = library
    assert captioning_roots(store) == [a]
    summary, items = run_job(store, FakeCaptioner())
    assert (summary.captioned, summary.skipped, summary.errors, summary.stopped) == (6, 0, 0, False)
    assert [p.done for p in items] == list(range(7)) + [6] and {p.total for p in items} == {6}
    assert all(m == "fake-cap" for m, _ in captions(store).values()) and len(captions(store)) == 6
    set_captioning(store, a, False)
    set_captioning(store, b, True)
    assert run_job(store, FakeCaptioner())[0].captioned == 3
    assert len(captions(store)) == 9  # opting out keeps the captions already made
    with pytest.raises(FoveaError):
        set_captioning(store, "/not/a/library", True)


def test_job_resumes_after_a_limit_or_a_stop_and_a_new_model_recaptions(library):
    store, _, _ = library
    cap = FakeCaptioner()
    first, _ = run_job(store, cap, limit=2)
    assert (first.captioned, first.stopped) == (2, True)
    calls = iter([False, True])  # stop after the second image
    second, _ = run_job(store, cap, should_stop=lambda: next(calls))
    assert (second.captioned, second.skipped, second.stopped) == (2, 2, True)
    third, _ = run_job(store, cap)
    assert (third.captioned, third.skipped, third.stopped) == (2, 4, False)
    assert len(cap.calls) == 6  # each image captioned once
    assert uncaptioned_count(store, "fake-cap") == 0
    assert run_job(store, cap)[0].captioned == 0
    other = FakeCaptioner("other-cap")
    assert run_job(store, other)[0].captioned == 6  # captions are stored per model id
    assert store.conn.execute("SELECT count(*) FROM captions").fetchone()[0] == 12


def test_broken_and_vanished_files_are_recorded_without_stopping(library):
    store, a, _ = library
    files = sorted(p for p in a.rglob("*") if p.is_file())
    files[0].write_bytes(b"not an image any more")  # changed since indexing
    files[1].unlink()
    summary, _ = run_job(store, FakeCaptioner())
    assert (summary.captioned, summary.errors, summary.missing) == (4, 1, 1)
    errors = {p: r for p, r, _ in store.errors()}
    assert list(errors) == [files[0]] and errors[files[0]].startswith("caption: ")
    # Repaired, the file is captioned on the next run and its error cleared.
    Image.new("RGB", (40, 30), (200, 10, 10)).save(files[0], "PNG" if files[0].suffix == ".png" else "JPEG")
    again, _ = run_job(store, FakeCaptioner())
    assert (again.captioned, again.errors) == (1, 0) and store.errors() == []


def test_model_failures_are_per_file_after_a_success_but_fatal_from_the_start(library):
    store, _, _ = library
    sizes = {Image.open(p).size for p in sorted(Path(library[1]).rglob("*.*"))}
    assert sizes == {(64, 48)}
    with pytest.raises(BackendError, match="in a row"):
        run_job(store, FakeCaptioner(fail_on_sizes={(64, 48)}))
    assert len(store.errors()) == MAX_MODEL_FAILURES - 1  # recorded before the job gave up
    assert captions(store) == {}


def test_captions_reach_the_text_index_as_they_are_written(library):
    store, _, _ = library
    gen = caption_library(store, FakeCaptioner())
    next(gen), next(gen)  # the start item, then one image captioned and committed
    assert store.conn.execute("SELECT count(*) FROM text_dirty").fetchone()[0] == 0
    assert len(text_index.search(store, ["colour"])) == 1
    gen.close()


def test_bad_sampling_arguments_are_refused_before_any_work(library):
    from app.core.errors import UsageError

    store, _, _ = library
    with pytest.raises(UsageError):
        list(caption_library(store, FakeCaptioner(), max_tokens=0))


# ---- end to end with a tiny random LLaVA converted to MLX ------------------------------------------


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    from converters.convert import convert
    from tests.builders.llava import make_llava_checkpoint

    root = tmp_path_factory.mktemp("llava")
    convert(make_llava_checkpoint(root / "hf", preset="tiny-siglip-qwen2", seed=5), root / "mlx")
    return root / "mlx"


def test_job_with_a_tiny_llava_stores_greedy_captions_resumes_and_records_errors(tiny_llava, library):
    from app.core.captions_backend import DEFAULT_PROMPT, MlxCaptioner
    from app.core.decode import open_image

    store, a, _ = library
    cap = MlxCaptioner(tiny_llava)
    # The last image in job order (by id) breaks after indexing, so the limited first run never meets it.
    ids_paths = store.conn.execute("SELECT id, path FROM images WHERE path LIKE ? ORDER BY id", (f"{a}/%",))
    files = [Path(p) for _, p in ids_paths.fetchall()]
    files[-1].write_bytes(b"\x89PNG\r\n\x1a\n broken")
    first, _ = run_job(store, cap, limit=3, max_tokens=6)
    assert (first.captioned, first.errors, first.stopped) == (3, 0, True)
    rest, _ = run_job(store, cap, max_tokens=6)
    assert (rest.captioned, rest.skipped, rest.errors) == (2, 3, 1)
    stored = captions(store)
    assert len(stored) == 5 and {m for m, _ in stored.values()} == {cap.model_id}
    assert [p for p, _, _ in store.errors()] == [files[-1]]
    # What the job stored is the greedy caption of the same picture with the default prompt.
    probe = files[0]
    expected = cap.caption(open_image(probe, min_side=768).image, DEFAULT_PROMPT, 6)
    assert stored[probe] == (cap.model_id, expected.text)


def test_cli_caption_image_prints_text_and_tokens(tiny_llava, tmp_path, capsys):
    from app.cli import main
    from app.core.captions_backend import MlxCaptioner
    from app.core.decode import open_image

    img = tmp_path / "x.png"
    Image.new("RGB", (50, 40), (30, 120, 200)).save(img)
    argv = [
        "caption-image",
        str(img),
        "--caption-model",
        str(tiny_llava),
        "--max-tokens",
        "5",
        "--prompt",
        "What?",
    ]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ref = MlxCaptioner(tiny_llava).caption(open_image(img).image, "What?", 5)
    assert out["text"] == ref.text and out["tokens"] == ref.tokens and 1 <= len(out["tokens"]) <= 5
    assert main(argv) == 0
    assert capsys.readouterr().out == ref.text + "\n"
    assert main([*argv[:-2], "--max-tokens", "0"]) == 2  # bad sampling arguments are usage errors
    assert main(["caption-image", str(tmp_path / "none.png"), "--caption-model", str(tiny_llava)]) == 2


def test_cli_caption_opts_libraries_in_and_resumes(tiny_llava, library, tmp_path, capsys):
    from app.cli import main

    store, a, b = library
    set_captioning(store, a, False)
    db = str(store.path)
    args = ["--db", db, "caption", "--caption-model", str(tiny_llava)]
    assert main([*args, "--limit", "4"]) == 0
    assert "captioned: 4 new" in capsys.readouterr().err
    assert main(args) == 0
    assert "captioned: 5 new, 4 already done, 0 errors" in capsys.readouterr().err
    assert set(captioning_roots(store)) == {a, b}


def test_cli_without_a_caption_model_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    from app.cli import main

    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    img = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(img)
    assert main(["caption-image", str(img)]) == 2
    assert (
        "no caption model; pass --caption-model PATH or pull llava-interleave-qwen-0.5b"
        in capsys.readouterr().err
    )
