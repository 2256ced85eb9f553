"""Tags in the store: the tagging job's writes, user decisions, the review queue, counts and filters."""

from __future__ import annotations

import numpy as np
import pytest

from app.core import tag_store
from app.core.contracts import Filters
from app.core.errors import UsageError
from app.core.store import Store
from app.core.tagging import tag_library
from tests.builders.jobs import collect
from tests.builders.tags import FakeEmbedder, add_images, mix, orthogonal_labels

LABELS = ["cat", "dog", "car"]


@pytest.fixture()
def library():
    """Six images: two clear cats, a clear dog, a cat/dog toss-up, a car/dog toss-up, one with nothing."""
    store = Store(":memory:")
    vectors = np.stack(
        [
            mix({0: 1.0}),
            mix({0: 0.9, 2: 0.1}),
            mix({1: 1.0}),
            mix({0: 0.5, 1: 0.5}),
            mix({2: 0.5, 1: 0.49}),
            mix({3: 1.0}),  # the background axis
        ]
    )
    emb = FakeEmbedder(logit_scale=20.0)
    ids = add_images(store, emb.model_id, vectors)
    yield store, emb, ids
    store.close()


def run(store, emb, **kw):
    """(the TagSummary, the JobProgress items) of one tagging run."""
    return collect(tag_library(store, emb, orthogonal_labels(LABELS), **kw))


def by_image(store):
    out: dict[str, dict[str, str]] = {}
    for t in tag_store.list_tags(store):
        out.setdefault(t.path.name, {})[t.label] = t.status
    return out


def test_tagging_applies_clear_labels_queues_toss_ups_and_leaves_the_rest_untagged(library):
    store, emb, ids = library
    summary, progress = run(store, emb, batch=4)
    assert [p.done for p in progress] == [4, 6] and progress[-1].total == 6
    assert (summary.done, summary.auto, summary.review, summary.untagged) == (6, 3, 2, 1)
    tags = by_image(store)
    assert tags["img_00000.png"] == {"cat": "auto"} and tags["img_00001.png"] == {"cat": "auto"}
    assert tags["img_00002.png"] == {"dog": "auto"}
    assert tags["img_00003.png"] == {"cat": "review", "dog": "review"}
    assert tags["img_00004.png"] == {"car": "review", "dog": "review"}
    assert "img_00005.png" not in tags
    rows = [t.to_json() for t in tag_store.list_tags(store, status="auto")]
    assert all(set(r) == {"path", "label", "score", "status"} and r["status"] == "auto" for r in rows)
    assert [t.label for t in tag_store.list_tags(store, label="DOG ")].count("dog") == 3


def test_review_queue_groups_candidates_per_image(library):
    store, emb, ids = library
    run(store, emb)
    queue = tag_store.review_queue(store)
    assert [q.image_id for q in queue] == [ids[3], ids[4]] or [q.image_id for q in queue] == [ids[4], ids[3]]
    for q in queue:
        assert len(q.candidates) == 2 and q.candidates[0][1] >= q.candidates[1][1]
    assert set(queue[0].to_json()) == {"path", "candidates"}


def test_counts_and_the_search_tag_filter_see_applied_tags_only(library):
    store, emb, ids = library
    run(store, emb)
    tag_store.set_decision(store, "/lib/img_00003.png", "cat", "confirmed")
    tag_store.set_decision(store, "/lib/img_00000.png", "cat", "rejected")
    counts = tag_store.tag_counts(store)
    assert counts.by_status == {"auto": 2, "review": 3, "confirmed": 1, "rejected": 1}
    assert counts.by_label == {"cat": 2, "dog": 1}
    np.testing.assert_array_equal(store.ids_matching(Filters(tag="cat")), [ids[1], ids[3]])


def test_decisions_survive_retagging_and_a_rename(library):
    store, emb, ids = library
    run(store, emb)
    tag_store.set_decision(store, "/lib/img_00000.png", "cat", "rejected")
    tag_store.set_decision(store, "/lib/img_00003.png", "dog", "confirmed")
    tag_store.set_decision(store, "/lib/img_00005.png", "sunset", "confirmed")  # a label of the user's own
    # A rename keeps the image id (the indexer's move detection); simulate it the way the indexer stores it.
    with store.transaction() as conn:
        conn.execute("UPDATE images SET path = '/lib/moved/renamed.png' WHERE id = ?", (ids[0],))
    run(store, emb)
    run(store, emb, min_score=0.2, min_margin=0.0)  # a looser rule must not touch decisions either
    tags = by_image(store)
    assert tags["renamed.png"] == {"cat": "rejected"}  # not re-applied, not overwritten
    assert tags["img_00003.png"]["dog"] == "confirmed"
    assert tags["img_00005.png"] == {"sunset": "confirmed"}
    rejected = tag_store.list_tags(store, status="rejected")
    assert [(str(t.path), t.label) for t in rejected] == [("/lib/moved/renamed.png", "cat")]


def test_retagging_replaces_machine_tags(library):
    store, emb, ids = library
    run(store, emb)
    list(tag_library(store, emb, orthogonal_labels(["kitty", "puppy", "vehicle"])))
    assert {t.label for t in tag_store.list_tags(store)} == {"kitty", "puppy", "vehicle"}


def test_bad_requests_raise_usage_errors(library):
    store, emb, ids = library
    with pytest.raises(UsageError, match="not in the library"):
        tag_store.set_decision(store, "/nowhere.png", "cat", "confirmed")
    with pytest.raises(UsageError, match="decision"):
        tag_store.set_decision(store, "/lib/img_00000.png", "cat", "maybe")
    with pytest.raises(UsageError, match="status"):
        tag_store.list_tags(store, status="pending")


def test_a_stopped_tagging_run_keeps_its_committed_blocks_and_says_how_far_it_got(library):
    store, emb, _ = library
    summary, progress = run(store, emb, batch=4, should_stop=lambda: True)
    assert [p.done for p in progress] == [4] and summary.done == 4 and summary.total == 6
    assert sum(1 for _ in by_image(store)) == summary.auto + summary.review  # the first block's tags are kept
