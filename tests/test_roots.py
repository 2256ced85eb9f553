"""Nested library roots: a folder inside a library, or around libraries, gives one library with each file once."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from app.core.api import Library
from app.core.indexer import index
from app.core.paths import demo_model_dir
from app.core.roots import contains, remove_root
from app.core.store import Store
from tests.builders.fake_embedder import FakeEmbedder
from tests.builders.images import make_library
from tests.builders.jobs import run_to_end


@pytest.fixture
def pictures(tmp_path) -> Path:
    pics = tmp_path / "Pictures"
    make_library(pics / "2023", 4, seed=1)
    make_library(pics / "2024", 5, seed=2)
    make_library(pics / "loose", 2, seed=3)
    return pics


def run(store: Store, emb, *folders: Path):
    return run_to_end(index(store, emb, [Path(f) for f in folders], batch_size=4, workers=1))


def rows(store: Store) -> dict[str, tuple[int, int]]:
    """name relative to Pictures -> (image id, owner root id)"""
    return {
        p.split("Pictures/", 1)[1]: (i, r)
        for i, p, r in store.conn.execute("SELECT id, path, root_id FROM images")
    }


def add_decisions(store: Store, image_id: int) -> None:
    with store.transaction() as c:
        c.execute("INSERT INTO tags VALUES (?, 'cat', 0.9, 'confirmed', 'fake', ?)", (image_id, time.time()))
        c.execute("INSERT INTO captions VALUES (?, 'cap', 'a cat on a sofa', ?)", (image_id, time.time()))


def decisions(store: Store, image_id: int) -> tuple:
    c = store.conn.execute
    return (
        c("SELECT label, status FROM tags WHERE image_id = ?", (image_id,)).fetchall(),
        c("SELECT text FROM captions WHERE image_id = ?", (image_id,)).fetchall(),
        c("SELECT count(*) FROM embeddings WHERE image_id = ?", (image_id,)).fetchone()[0],
    )


def test_contains_compares_whole_path_components():
    assert contains("/a/b", "/a/b") and contains("/a/b", "/a/b/c.jpg") and contains("/", "/x")
    assert not contains("/a/b", "/a/bc/d.jpg") and not contains("/a/b/c", "/a/b")


def test_adding_the_parent_of_a_library_folds_it_in_with_ids_tags_and_captions_intact(pictures, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    run(store, emb, pictures / "2024")
    before = rows(store)
    child_img = before["2024/img_0001.jpg" if "2024/img_0001.jpg" in before else sorted(before)[0]][0]
    add_decisions(store, child_img)
    kept = decisions(store, child_img)

    summary = run(store, emb, pictures)  # crashed with IntegrityError: UNIQUE constraint failed: images.path
    after = rows(store)
    assert len(after) == 11 and summary.added == 6 and summary.errors == 0
    assert {k: v[0] for k, v in after.items() if k in before} == {k: v[0] for k, v in before.items()}
    parent_id = next(i for i, p, _ in store.roots() if p == pictures)
    assert {r for _, r in after.values()} == {parent_id}  # one owner: each file once
    assert decisions(store, child_img) == kept and kept[2] == 1
    assert [p for _, p, _ in store.roots()] == [pictures / "2024", pictures]  # the finer root stays as a view
    assert set(dict(store.status_counts())) == {"ok"}


def test_adding_a_folder_inside_a_library_indexes_it_as_part_of_that_library(pictures, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    run(store, emb, pictures)
    before = rows(store)
    new = make_library(pictures / "2024" / "new", 1, seed=9)[0]
    summary = run(store, emb, pictures / "2024")
    after = rows(store)
    assert summary.added == 1 and summary.missing == 0 and summary.embedded == 1
    assert summary.notes == [f"{pictures / '2024'} is inside the library {pictures}: indexed as part of it"]
    assert {k: v for k, v in after.items() if k in before} == before  # the rest of Pictures untouched
    assert str(new).split("Pictures/", 1)[1] in after and len(after) == 12
    assert len({r for _, r in after.values()}) == 1


def test_a_subfolder_scan_marks_only_its_own_vanished_files_missing(pictures, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    run(store, emb, pictures)
    next((pictures / "2024").rglob("*.jpg")).unlink()
    summary = run(store, emb, pictures / "2024")
    assert summary.missing == 1
    assert store.status_counts() == {"ok": 10, "missing": 1}


def test_removing_a_root_keeps_what_another_root_covers(pictures, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    run(store, emb, pictures / "2024")
    run(store, emb, pictures)
    img = rows(store)[sorted(k for k in rows(store) if k.startswith("2024/"))[0]][0]
    add_decisions(store, img)
    kept = decisions(store, img)

    assert remove_root(store, pictures)
    left = rows(store)
    assert sorted(left) == sorted(k for k in left if k.startswith("2024/")) and len(left) == 5
    child_id = next(i for i, p, _ in store.roots() if p == pictures / "2024")
    assert {r for _, r in left.values()} == {child_id} and decisions(store, img) == kept
    assert not remove_root(store, pictures / "nowhere")


def test_removing_a_view_inside_a_library_forgets_nothing(pictures, tmp_path):
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    run(store, emb, pictures)
    run(store, emb, pictures / "2023")
    assert remove_root(store, pictures / "2023")
    assert len(rows(store)) == 11 and [p for _, p, _ in store.roots()] == [pictures]


def test_gui_drop_path_library_add_then_index_in_both_orders(pictures, tmp_path):
    # MainWindow.add_folders calls Library.add_root, then Library.index_job on the same folders.
    for order in ([pictures / "2023", pictures], [pictures, pictures / "2023"]):
        s = Library(tmp_path / f"gui-{order[0].name}.sqlite", embedder=FakeEmbedder())
        for folder in order:
            s.add_root(folder)
            list(s.index_job([folder]))
        libs = {x.path.name: x for x in s.libraries()}
        assert libs["Pictures"].count == 11 and libs["2023"].count == 4
        assert s.store.conn.execute("SELECT count(*) FROM images").fetchone()[0] == 11
        s.close()


@pytest.mark.skipif(not demo_model_dir().is_dir(), reason="the bundled demo model is missing")
@pytest.mark.parametrize("child_first", [True, False])
def test_cli_index_nested_folders_in_either_order(pictures, tmp_path, capsys, child_first):
    from app.cli import main

    os.environ["FOVEA_DATA_DIR"] = str(tmp_path / "data")
    db = str(tmp_path / "cli.sqlite")
    order = [pictures / "2024", pictures] if child_first else [pictures, pictures / "2024"]
    for folder in order:
        assert main(["--db", db, "--backend", "mlx", "index", str(folder)]) == 0
    err = capsys.readouterr().err
    assert ("is inside the library" in err) != child_first
    assert main(["--db", db, "status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["images"] == 11 and info["by_status"] == {"ok": 11} and info["errors"] == []
    assert sorted(r["path"] for r in info["roots"]) == sorted([str(pictures), str(pictures / "2024")])
