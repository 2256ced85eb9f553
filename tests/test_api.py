"""Library: the one core object both front ends drive (libraries, browsing, details, decisions, query lines)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.core.api import Library
from app.core.contracts import Filters, LibrarySummary, TagInfo, ViewCounts
from app.core.query import split_query_line
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
def lib(tmp_path, monkeypatch):
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    make_library(tmp_path / "photos", 6)
    (tmp_path / "photos" / "bad.jpg").write_bytes(b"nope")
    s = Library(tmp_path / "lib.sqlite", embedder=FakeEmbedder())
    s.add_root(tmp_path / "photos")
    for _ in s.index_job([tmp_path / "photos"]):
        pass
    yield s
    s.close()


def test_libraries_report_counts_errors_and_state(lib, tmp_path):
    [summary] = lib.libraries()
    assert summary == LibrarySummary((tmp_path / "photos").resolve(), "online", 6, 1)
    assert lib.view_counts() == ViewCounts(all=6, review=0, errors=1)
    lib.indexing.add(str(summary.path))
    assert lib.libraries()[0].state == "indexing"


def test_browse_details_and_decisions(lib):
    items = lib.browse("all")
    assert len(items) == 6 and all(Path(p).is_file() for _, p in items)
    image_id = items[0][0]
    d = lib.image_details(image_id)
    assert str(d.path) == items[0][1] and d.tags == () and d.size_text
    lib.decide_tag(image_id, "cat", "confirmed")
    assert lib.image_details(image_id).tags == (TagInfo("cat", None, "confirmed"),)
    assert [i for i, _ in lib.browse("all", tag="cat")] == [image_id]
    assert lib.image_details(10**9) is None


def test_search_and_similar_work_from_worker_threads(lib):
    """Each thread gets its own SQLite connection; searches are serialised on the engine."""
    target = lib.browse("all")[0]
    out: list = []

    def work() -> None:
        out.append(("similar", lib.similar(target[0], k=3)))
        out.append(("text", lib.search("anything at all", k=3)))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 6 and all(len(r.hits) == 3 for _, r in out)
    assert all(target[0] not in [h.image_id for h in r.hits] for kind, r in out if kind == "similar")
    texts = [[h.image_id for h in r.hits] for kind, r in out if kind == "text"]
    assert texts[0] == texts[1] == texts[2]


def test_removing_a_library_forgets_rows_and_keeps_files(lib, tmp_path):
    files = sorted(p.name for p in (tmp_path / "photos").iterdir())
    lib.remove_root(tmp_path / "photos")
    assert lib.libraries() == [] and lib.browse("all") == []
    assert lib.view_counts().all == 0
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == files


def test_hits_carry_their_applied_tags_and_filters_reach_sql(lib):
    first, second = (i for i, _ in lib.browse("all")[:2])
    lib.decide_tag(first, "cat", "confirmed")
    lib.decide_tag(second, "cat", "rejected")  # a rejected label is not applied
    hits = {h.image_id: h for h in lib.search("anything", k=10).hits}
    assert hits[first].tags == ("cat",) and hits[second].tags == ()
    assert hits[first].to_json()["tags"] == ["cat"] and "tags" not in hits[second].to_json()
    only = lib.search("anything", Filters(tag="cat"), k=10)
    assert [h.image_id for h in only.hits] == [first]
    assert [h.image_id for h in lib.similar(second, Filters(tag="cat"), k=10).hits] == [first]


def test_a_folder_filter_and_a_folder_view_agree_on_what_is_under_a_folder(tmp_path, monkeypatch):
    """One rule for "under a folder" (escaped LIKE): `photos_2` is not under `photos`, `%` is literal."""
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    for name in ("photos", "photos_2", "pho%"):
        make_library(tmp_path / name, 2)
    with Library(tmp_path / "lib.sqlite", embedder=FakeEmbedder()) as lib:
        for _ in lib.index_job([tmp_path / n for n in ("photos", "photos_2", "pho%")]):
            pass
        for name in ("photos", "pho%"):
            folder = str((tmp_path / name).resolve())
            browsed = sorted(i for i, _ in lib.browse("all", folder=folder))
            searched = sorted(h.image_id for h in lib.search("x", Filters(folder=folder), k=50).hits)
            assert len(browsed) == 2 and browsed == searched


def test_every_job_reports_job_progress_only(lib, tmp_path):
    """Index and tag jobs yield JobProgress (no core-internal item leaks to a front end); the two
    core items that keep their own type map explicitly, and anything else is refused."""
    from app.core.contracts import JobKind, JobProgress, TagSettings
    from app.core.explain import ExplainProgress
    from app.core.jobs import describe
    from app.core.model_pull import PullProgress

    (tmp_path / "labels.txt").write_text("red\nblue\n")
    for job in (lib.index_job(), lib.tag_job(TagSettings(), tmp_path / "labels.txt")):
        items = list(job)
        assert items and all(type(p) is JobProgress for p in items)
    assert describe(JobKind.EXPLAIN, ExplainProgress(2, 9)) == JobProgress(2, 9, "Explaining… 2 of 9")
    step = PullProgress("download", "Downloading x… 1 of 4 MB", 1, 4)
    assert describe(JobKind.PULL, step) == JobProgress(1, 4, step.message, phase="download")
    with pytest.raises(TypeError, match="int"):
        describe(JobKind.INDEX, 7)
