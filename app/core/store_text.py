"""The store's full-text rows (schema v3's `text_fts` and `text_dirty`) and caption lookups for hits.

A mixin of `Store` (kept apart to keep files small): every SQL statement still lives in the store;
`app.core.text_index` holds the query language, the file-name words and the refresh policy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from app.core.store_views import APPLIED


class StoreText:
    conn: sqlite3.Connection

    def dirty_text_ids(self, limit: int) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT image_id FROM text_dirty LIMIT ?", (limit,))]

    def rewrite_text_rows(self, ids: Sequence[int], name_of: Callable[[str], str]) -> None:
        """Rebuild the FTS rows of `ids` from their captions, applied tags and file names; clear their marks.

        Call inside `transaction()`. `name_of(path text)` gives the words of a file name.
        """
        marks = ",".join("?" * len(ids))
        self.conn.execute(f"DELETE FROM text_fts WHERE rowid IN ({marks})", ids)
        rows = self.conn.execute(
            f"""SELECT i.id, i.path,
                   (SELECT group_concat(c.text, ' ') FROM captions c WHERE c.image_id = i.id),
                   (SELECT group_concat(t.label, ' ') FROM tags t WHERE t.image_id = i.id AND t.{APPLIED})
                FROM images i WHERE i.id IN ({marks})""",
            ids,
        ).fetchall()
        self.conn.executemany(
            "INSERT INTO text_fts (rowid, caption, tags, name) VALUES (?, ?, ?, ?)",
            [(i, cap or "", tags or "", name_of(path)) for i, path, cap, tags in rows],
        )
        self.conn.execute(f"DELETE FROM text_dirty WHERE image_id IN ({marks})", ids)

    def mark_all_text_dirty(self) -> None:
        """Every image marked for a rebuild, rows of deleted images dropped (call inside `transaction()`)."""
        self.conn.execute("INSERT OR IGNORE INTO text_dirty SELECT id FROM images")
        self.conn.execute("DELETE FROM text_fts WHERE rowid NOT IN (SELECT id FROM images)")

    def text_matches(self, expr: str, weights: Sequence[float], limit: int | None) -> sqlite3.Cursor:
        """(image id, bm25 score) of 'ok' images matching an FTS5 expression, best first; None: no limit."""
        w = ", ".join(str(x) for x in weights)
        sql = f"""SELECT f.rowid, bm25(text_fts, {w}) AS s FROM text_fts f JOIN images i ON i.id = f.rowid
                  WHERE text_fts MATCH ? AND i.status = 'ok' ORDER BY s, f.rowid"""
        return (
            self.conn.execute(sql + " LIMIT ?", (expr, limit))
            if limit is not None
            else self.conn.execute(sql, (expr,))
        )

    def has_captions(self) -> bool:
        return self.conn.execute("SELECT 1 FROM captions WHERE text != '' LIMIT 1").fetchone() is not None

    def newest_captions(self, image_ids: Sequence[int]) -> dict[int, str]:
        """The newest non-empty caption of each image that has one (any caption model)."""
        ids = [int(i) for i in image_ids]
        out: dict[int, str] = {}
        for k in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            chunk = ids[k : k + 900]
            rows = self.conn.execute(
                f"""SELECT image_id, text FROM captions WHERE text != '' AND image_id IN ({",".join("?" * len(chunk))})
                    ORDER BY created_at""",
                chunk,
            )
            out.update((int(i), t) for i, t in rows)  # later (newer) rows overwrite
        return out
