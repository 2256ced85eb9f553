"""The store's tag rows: listing, decisions, the review queue, counts, machine tags, calibrated thresholds.

A mixin of `Store` (kept apart to keep files small): every SQL statement still lives in the store;
`app.core.tag_store` adds the rules (statuses, label normalisation, typed rows) on top.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from app.core.store_views import APPLIED

TagRowTuple = tuple[str, str, float | None, str, int, str | None, float | None]


class StoreTags:
    conn: sqlite3.Connection

    def tag_rows(self, status: str | None = None, label: str | None = None) -> list[TagRowTuple]:
        """(path text, label, score, status, image id, model id, updated at), by path then best score."""
        where, args = [], []
        if status:
            where.append("t.status = ?")
            args.append(status)
        if label:
            where.append("t.label = ?")
            args.append(label)
        sql = (
            "SELECT i.path, t.label, t.score, t.status, t.image_id, t.model_id, t.updated_at FROM tags t "
            "JOIN images i ON i.id = t.image_id"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY i.path, t.score DESC, t.label"
        )
        return self.conn.execute(sql, args).fetchall()

    def put_decision(self, image_id: int, label: str, decision: str, now: float) -> None:
        """Record a user decision (call inside `transaction()`); keeps the tagger's score if there was one."""
        self.conn.execute(
            """INSERT INTO tags (image_id, label, score, status, model_id, updated_at) VALUES (?, ?, NULL, ?, NULL, ?)
               ON CONFLICT (image_id, label) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at""",
            (image_id, label, decision, now),
        )

    def review_rows(self) -> list[tuple[int, str, str, float | None]]:
        """(image id, path text, label, score) of tags waiting for review, by image then best score."""
        return self.conn.execute(
            """SELECT t.image_id, i.path, t.label, t.score FROM tags t JOIN images i ON i.id = t.image_id
               WHERE t.status = 'review' ORDER BY t.image_id, t.score DESC"""
        ).fetchall()

    def tag_status_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, count(*) FROM tags GROUP BY status").fetchall())

    def applied_label_counts(self) -> dict[str, int]:
        """Applied tags per label, most frequent first."""
        rows = self.conn.execute(
            f"SELECT label, count(*) AS n FROM tags WHERE {APPLIED} GROUP BY label ORDER BY n DESC, label"
        ).fetchall()
        return dict(rows)

    def replace_machine_rows(
        self, image_ids: Iterable[int], rows: Sequence[tuple[int, str, float, str]], model_id: str, now: float
    ) -> None:
        """Drop the auto/review tags of `image_ids`, write `rows` (call inside `transaction()`); decisions win."""
        self.conn.executemany(
            "DELETE FROM tags WHERE image_id = ? AND status IN ('auto', 'review')",
            [(int(i),) for i in image_ids],
        )
        self.conn.executemany(
            "INSERT OR IGNORE INTO tags (image_id, label, score, status, model_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(i, lb, s, st, model_id, now) for i, lb, s, st in rows],
        )

    def decision_rows(self) -> list[tuple[int, str, str]]:
        """(image id, label, status) of every confirmed or rejected tag, by label then image."""
        return self.conn.execute(
            "SELECT image_id, label, status FROM tags WHERE status IN ('confirmed', 'rejected') ORDER BY label, image_id"
        ).fetchall()

    def replace_thresholds(
        self, model_id: str, rows: Sequence[tuple[str, float, float, int]], now: float
    ) -> None:
        """Replace a model's per-label (label, min_score, min_margin, n_examples) (call inside `transaction()`)."""
        self.conn.execute("DELETE FROM tag_thresholds WHERE model_id = ?", (model_id,))
        self.conn.executemany(
            "INSERT INTO tag_thresholds VALUES (?, ?, ?, ?, ?, ?)", [(model_id, *r, now) for r in rows]
        )

    def threshold_rows(self, model_id: str) -> list[tuple[str, float, float]]:
        return self.conn.execute(
            "SELECT label, min_score, min_margin FROM tag_thresholds WHERE model_id = ?", (model_id,)
        ).fetchall()
