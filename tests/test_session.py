"""Session: the Qt-free facade the window drives (libraries, browsing, details, decisions, query lines)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.core.session import Session, split_query_line
from tests.builders.fake_embedder import FakeEmbedder
from tests.builders.images import make_library


@pytest.mark.parametrize(
    ("line", "terms"),
    [
        ("red circle", ["red circle"]),
        ("red circle -blue sky", ["red circle", "-blue sky"]),
        ('2:"a star" -0.5:blue', ["2:a star", "-0.5:blue"]),
        ("+cat -dog", ["+cat", "-dog"]),
        ('an "unbalanced', ["an unbalanced"]),
        ("", []),
    ],
)
def test_a_search_line_splits_into_rclip_terms(line, terms):
    assert split_query_line(line) == terms


def test_an_existing_image_path_is_its_own_term(tmp_path):
    img = make_library(tmp_path / "q", 1)[0]
    assert split_query_line(f"{img} sunset") == [str(img), "sunset"]


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    make_library(tmp_path / "photos", 6)
    (tmp_path / "photos" / "bad.jpg").write_bytes(b"nope")
    s = Session(tmp_path / "lib.sqlite", embedder=FakeEmbedder())
    s.add_library(tmp_path / "photos")
    for _ in s.index_job([tmp_path / "photos"]):
        pass
    yield s
    s.close()


def test_libraries_report_counts_errors_and_state(session, tmp_path):
    [lib] = session.libraries()
    assert lib == {"path": str((tmp_path / "photos").resolve()), "state": "online", "count": 6, "errors": 1}
    assert session.view_counts() == {"all": 6, "review": 0, "errors": 1}
    session.indexing.add(lib["path"])
    assert session.libraries()[0]["state"] == "indexing"


def test_browse_details_and_decisions(session):
    items = session.browse("all")
    assert len(items) == 6 and all(Path(p).is_file() for _, p in items)
    image_id = items[0][0]
    d = session.image_details(image_id)
    assert d["path"] == items[0][1] and d["tags"] == [] and d["meta"]["size"]
    session.set_tag_decision(image_id, "cat", "confirmed")
    assert session.image_details(image_id)["tags"] == [{"label": "cat", "score": None, "status": "confirmed"}]
    assert [i for i, _ in session.browse("all", tag="cat")] == [image_id]
    assert session.image_details(10**9) is None


def test_search_and_similar_work_from_worker_threads(session):
    """Each thread gets its own SQLite connection; searches are serialised on the engine."""
    target = session.browse("all")[0]
    out: list = []

    def work() -> None:
        out.append(("similar", session.similar(target[0], k=3)))
        out.append(("text", session.search_text("anything at all", k=3)))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 6 and all(len(r.hits) == 3 for _, r in out)
    assert all(target[0] not in [h.image_id for h in r.hits] for kind, r in out if kind == "similar")
    texts = [[h.image_id for h in r.hits] for kind, r in out if kind == "text"]
    assert texts[0] == texts[1] == texts[2]


def test_removing_a_library_forgets_rows_and_keeps_files(session, tmp_path):
    files = sorted(p.name for p in (tmp_path / "photos").iterdir())
    session.remove_library(tmp_path / "photos")
    assert session.libraries() == [] and session.browse("all") == []
    assert session.view_counts()["all"] == 0
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == files
