"""The store's reads for the front ends (browse, summaries, details, tags on hits).

A mixin of `Store` (kept apart to keep files small): every SQL statement still lives in the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from app.core.store_paths import path_to_text, text_to_path

# "An applied tag": the tagger was sure, or the user confirmed it. One definition for every query.
APPLIED = "status IN ('auto', 'confirmed')"


def under_folder(column: str, folder: str | Path) -> tuple[str, list[str]]:
    """SQL (and its arguments) for `column` being `folder` or a path below it, with either separator."""
    prefix = path_to_text(folder).rstrip("/\\")
    esc = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    sql = f"({column} = ? OR {column} LIKE ? ESCAPE '\\' OR {column} LIKE ? ESCAPE '\\')"
    return sql, [prefix, esc + "/%", esc + "\\\\%"]


class StoreViews:
    conn: sqlite3.Connection

    def browse_ids(
        self, folder: str | Path | None = None, tag: str | None = None, limit: int = 200_000
    ) -> list[tuple[int, str]]:
        """(image id, path text) of indexed images, newest capture first."""
        sql, args = "SELECT i.id, i.path FROM images i WHERE i.status = 'ok'", []
        if folder:
            clause, more = under_folder("i.path", folder)
            sql += " AND " + clause
            args += more
        if tag:
            sql += f" AND i.id IN (SELECT image_id FROM tags WHERE label = ? AND {APPLIED})"
            args.append(tag)
        sql += " ORDER BY i.taken_at DESC, i.path LIMIT ?"
        args.append(limit)
        # Path objects cost ~10 us each: only escaped (non-UTF-8) names need decoding.
        return [
            (i, p if "\ufffd" not in p else str(text_to_path(p))) for i, p in self.conn.execute(sql, args)
        ]

    def view_counts(self) -> tuple[int, int, int]:
        """(indexed images, images with a tag to review, unreadable images)."""
        c = self.conn.execute
        return (
            c("SELECT count(*) FROM images WHERE status = 'ok'").fetchone()[0],
            c("SELECT count(DISTINCT image_id) FROM tags WHERE status = 'review'").fetchone()[0],
            c("SELECT count(*) FROM images WHERE status = 'error'").fetchone()[0],
        )

    def root_summaries(self) -> list[tuple[Path, str, int, int]]:
        """(path, state, indexed images, unreadable images) per library root, counting everything below it
        (a root inside another is a view of it: its photos belong to the wider root, see app.core.roots)."""
        out = []
        for p, state in self.conn.execute("SELECT path, state FROM roots ORDER BY id").fetchall():
            clause, args = under_folder("path", p)
            ok, bad = self.conn.execute(
                f"SELECT sum(status = 'ok'), sum(status = 'error') FROM images WHERE {clause}", args
            ).fetchone()
            out.append((text_to_path(p), state, int(ok or 0), int(bad or 0)))
        return out

    def image_tags(self, image_id: int) -> list[tuple[str, float | None, str]]:
        """(label, score, status) of one image, best score first."""
        return self.conn.execute(
            "SELECT label, score, status FROM tags WHERE image_id = ? ORDER BY score DESC", (image_id,)
        ).fetchall()

    def latest_caption(self, image_id: int) -> str | None:
        row = self.conn.execute(
            "SELECT text FROM captions WHERE image_id = ? ORDER BY created_at DESC LIMIT 1", (image_id,)
        ).fetchone()
        return row[0] if row else None

    def applied_tags(self, image_ids: Sequence[int]) -> dict[int, list[str]]:
        """Applied labels per image (best score first); images without any are left out."""
        out: dict[int, list[str]] = {}
        ids = [int(i) for i in image_ids]
        for k in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
            chunk = ids[k : k + 900]
            marks = ",".join("?" * len(chunk))
            for i, label in self.conn.execute(
                f"SELECT image_id, label FROM tags WHERE image_id IN ({marks}) AND {APPLIED} "
                "ORDER BY score DESC",
                chunk,
            ):
                out.setdefault(int(i), []).append(label)
        return out

    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def embedding_counts(self) -> list[tuple[str, int]]:
        """(model id, embedded images) per model."""
        return self.conn.execute("SELECT model_id, count(*) FROM embeddings GROUP BY model_id").fetchall()
