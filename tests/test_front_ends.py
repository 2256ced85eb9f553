"""The CLI and the window do the same thing where they used to drift apart (both call core's Library):
the same tagging thresholds, the same caption opt-in, a tagged demo, filters and tags on hits, and one
way of reading a query line."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.cli import main  # noqa: E402
from app.core import api, demo  # noqa: E402
from app.core.api import Library  # noqa: E402
from app.core.captions import captioning_roots, set_captioning  # noqa: E402
from app.core.contracts import TagSettings  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.core.store import Store  # noqa: E402
from tests.builders.fake_captioner import FakeCaptioner  # noqa: E402
from tests.builders.fake_embedder import FakeEmbedder  # noqa: E402
from tests.builders.images import make_library  # noqa: E402

WAIT_MS = 60_000


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Two photo folders, a fake model for both front ends, and an empty user data directory."""
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    emb = FakeEmbedder()
    monkeypatch.setattr(api, "load_embedder", lambda model, backend="auto": emb)
    make_library(tmp_path / "a", 6, seed=1)
    make_library(tmp_path / "b", 4, seed=2)
    (tmp_path / "labels.txt").write_text("red\ngreen\nblue\nyellow\n", encoding="utf-8")
    return tmp_path, emb


def cli(db: Path, *args: str) -> int:
    return main(["--db", str(db), "--model", "fake", *args])


def window(qtbot, db: Path, emb, tmp_path: Path):
    from app.gui.main_window import MainWindow

    lib = Library(db, embedder=emb)
    win = MainWindow(lib, tmp_path / "thumbs")
    qtbot.addWidget(win)
    return win, lib


def run_in_window(qtbot, win, start) -> None:
    start()
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=WAIT_MS)


def tag_rows(db: Path) -> list[tuple]:
    with Store(db) as st:
        return st.conn.execute(
            "SELECT i.path, t.label, t.status, round(t.score, 5) FROM tags t JOIN images i ON i.id = t.image_id "
            "ORDER BY i.path, t.label"
        ).fetchall()


def indexed_copy(tmp_path: Path, name: str) -> Path:
    db = tmp_path / f"{name}.sqlite"
    assert cli(db, "index", str(tmp_path / "a"), str(tmp_path / "b")) == 0
    return db


def test_both_front_ends_tag_with_the_thresholds_saved_in_preferences(env, qtbot, monkeypatch):
    tmp_path, emb = env
    Settings(min_score=0.3, min_margin=0.05).save()
    used: list[TagSettings] = []
    original = Library.tag_job

    def spy(self, settings, labels_file=None, should_stop=None):
        used.append(settings)
        return original(self, settings, labels_file, should_stop)

    monkeypatch.setattr(Library, "tag_job", spy)
    monkeypatch.setattr(Library, "vocabulary_path", lambda self, f=None: tmp_path / "labels.txt")
    cli_db, gui_db = indexed_copy(tmp_path, "cli"), indexed_copy(tmp_path, "gui")
    assert cli(cli_db, "tag") == 0
    win, lib = window(qtbot, gui_db, emb, tmp_path)
    run_in_window(qtbot, win, win.tag_all)
    assert used == [TagSettings(0.3, 0.05)] * 2
    assert tag_rows(cli_db) == tag_rows(gui_db) and tag_rows(cli_db)
    assert cli(cli_db, "tag", "--min-score", "0.9") == 0  # a flag still overrides the preference
    assert used[-1] == TagSettings(0.9, 0.05)
    lib.close()


def use_fake_captioner(monkeypatch, model_dir) -> None:
    """Both front ends caption through the fake captioner (no LLaVA weights offline)."""
    monkeypatch.setattr(
        "app.core.captions_backend.open_captioner", lambda folder, backend="auto": FakeCaptioner()
    )
    monkeypatch.setattr("app.core.captions.caption_model_dir", lambda name=None: model_dir)


def test_captioning_opts_in_every_library_from_both_front_ends(env, qtbot, monkeypatch):
    tmp_path, emb = env
    use_fake_captioner(monkeypatch, tmp_path)
    dbs = indexed_copy(tmp_path, "cli"), indexed_copy(tmp_path, "gui")
    for db in dbs:  # one library opted in before: the other must not be left out
        with Store(db) as st:
            set_captioning(st, (tmp_path / "a").resolve(), True)
    assert cli(dbs[0], "caption") == 0
    win, lib = window(qtbot, dbs[1], emb, tmp_path)
    run_in_window(qtbot, win, win.caption_all)
    for db in dbs:
        with Store(db) as st:
            assert sorted(captioning_roots(st)) == sorted((tmp_path / n).resolve() for n in "ab")
            assert st.conn.execute("SELECT count(*) FROM captions").fetchone()[0] == 10
    lib.close()


def test_the_demo_is_written_indexed_and_tagged_by_both_front_ends(env, qtbot, monkeypatch):
    tmp_path, emb = env
    write = demo.write_demo_library
    monkeypatch.setattr(demo, "write_demo_library", lambda folder: write(folder, n=12))
    cli_db, gui_db = tmp_path / "cli.sqlite", tmp_path / "gui.sqlite"
    assert cli(cli_db, "demo", "--no-gui") == 0
    win, lib = window(qtbot, gui_db, emb, tmp_path)
    run_in_window(qtbot, win, win.open_demo)
    assert [s.count for s in lib.libraries()] == [12]
    with Store(cli_db) as a, Store(gui_db) as b:
        for st in (a, b):  # every image went through the tagger (a row per plausible label, or none)
            assert st.conn.execute("SELECT count(*) FROM images WHERE status = 'ok'").fetchone()[0] == 12
    assert tag_rows(cli_db) == tag_rows(gui_db) and tag_rows(cli_db)
    lib.close()


def test_filters_tags_on_hits_and_query_lines_agree(env, qtbot, capsys):
    tmp_path, emb = env
    db = indexed_copy(tmp_path, "lib")
    win, lib = window(qtbot, db, emb, tmp_path)
    target = lib.browse("all")[3]
    assert cli(db, "tags", "confirm", target[1], "sunset") == 0
    capsys.readouterr()

    assert cli(db, "search", "warm", "evening", "-light", "-k", "10", "--json") == 0
    cli_hits = json.loads(capsys.readouterr().out)["hits"]
    shown: list = []
    win._show_results = lambda result, what: shown.append(result)
    win.search.setText("warm evening -light")
    win.run_search()
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
    gui_paths = [str(h.path) for h in shown[-1].hits[:10]]
    assert [h["path"] for h in cli_hits] == gui_paths  # the same terms from the shell and the search field

    assert cli(db, "search", "anything", "--tag", "sunset", "--json") == 0
    [hit] = json.loads(capsys.readouterr().out)["hits"]
    assert hit["path"] == target[1] and hit["tags"] == ["sunset"]
    win.show_view("all", tag="sunset")  # the tag being shown filters the window's search
    win.search.setText("anything")
    win.run_search()
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=WAIT_MS)
    assert [(str(h.path), h.tags) for h in shown[-1].hits] == [(target[1], ("sunset",))]
    lib.close()


def test_the_captions_preference_captions_new_photos_after_indexing(env, qtbot, monkeypatch):
    """Preferences ▸ "Caption photos in the background" (saved, and used to do nothing) chains a caption job."""
    tmp_path, emb = env
    use_fake_captioner(monkeypatch, tmp_path)
    win, lib = window(qtbot, tmp_path / "gui.sqlite", emb, tmp_path)
    for on, expected in ((False, 0), (True, 4)):
        Settings(captions=on).save()
        folder = tmp_path / ("b" if on else "a")
        win.add_folders([str(folder)])
        qtbot.waitUntil(
            lambda f=folder: str(f.resolve()) in [str(s.path) for s in lib.libraries()], timeout=WAIT_MS
        )
        qtbot.waitUntil(lambda: not win.jobs.running, timeout=WAIT_MS)
        qtbot.wait(200)  # a chained job starts from the finished signal
        qtbot.waitUntil(lambda: not win.jobs.running, timeout=WAIT_MS)
        with Store(lib.db) as st:
            n = st.conn.execute(
                "SELECT count(*) FROM captions c JOIN images i ON i.id = c.image_id WHERE i.path LIKE ?",
                (str(folder.resolve()) + "/%",),
            ).fetchone()[0]
        assert n == expected
    lib.close()


def test_the_window_reads_errors_tag_counts_and_details_off_its_own_thread(env, qtbot, monkeypatch):
    import threading

    tmp_path, emb = env
    seen: dict[str, list[bool]] = {"errors": [], "tag_counts": [], "image_details": []}
    for name in seen:
        original = getattr(Library, name)

        def spy(self, *a, _name=name, _original=original, **kw):
            seen[_name].append(threading.current_thread() is threading.main_thread())
            return _original(self, *a, **kw)

        monkeypatch.setattr(Library, name, spy)
    win, lib = window(qtbot, tmp_path / "gui.sqlite", emb, tmp_path)
    win.add_folders([str(tmp_path / "a")])
    qtbot.waitUntil(lambda: len(win.model.photos()) == 6 and not win.jobs.running, timeout=WAIT_MS)
    win.grid.setCurrentIndex(win.model.index(1))
    qtbot.waitUntil(lambda: win.detail.image_id is not None, timeout=WAIT_MS)
    for view, done in (("errors", "Errors —"), ("tags", "Tags —")):
        win.sidebar.select_view(view)
        qtbot.waitUntil(lambda d=done: win.jobs.label.text().startswith(d), timeout=WAIT_MS)
    assert all(seen.values()) and not any(any(v) for v in seen.values()), (
        seen
    )  # called, never on the GUI thread
    lib.close()


def test_the_window_reads_its_libraries_off_its_own_thread_at_start_and_before_the_trash(
    env, qtbot, monkeypatch
):
    """The two last reads that ran on the GUI thread: "is there a library yet?" when the window opens
    (then the welcome dialog is offered) and the library folders checked before a move to the Trash."""
    import threading

    from app.gui import app as gui_app
    from app.gui import first_run

    tmp_path, emb = env
    on_gui: list[bool] = []
    original = Library.libraries

    def spy(self, *a, **kw):
        on_gui.append(threading.current_thread() is threading.main_thread())
        return original(self, *a, **kw)

    monkeypatch.setattr(Library, "libraries", spy)
    offered = []
    monkeypatch.setattr(first_run, "offer_first_run", offered.append)
    win, lib = window(qtbot, tmp_path / "gui.sqlite", emb, tmp_path)
    on_gui.clear()  # the sidebar's own reads while the window was built are checked elsewhere
    gui_app.start(win, None, demo=False)
    qtbot.waitUntil(lambda: offered == [win], timeout=WAIT_MS)  # no library yet: the welcome dialog
    win.dups_page.trash_chosen()  # nothing chosen: refused, after reading the library folders
    qtbot.waitUntil(lambda: "trash" in win.notices.bars, timeout=WAIT_MS)
    assert on_gui and not any(on_gui), on_gui
    lib.close()
