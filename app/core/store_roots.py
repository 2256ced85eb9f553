"""The store's statements for nested library roots and iCloud placeholders (app.core.roots and the scan decide).

A mixin of `Store` (kept apart to keep files small): every SQL statement still lives in the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from app.core.store_paths import path_to_text
from app.core.store_views import under_folder


class StoreRoots:
    conn: sqlite3.Connection

    def reown_images(self, from_root_ids: Sequence[int], to_root_id: int) -> None:
        """Give every image of `from_root_ids` to `to_root_id`; a captioning opt-in goes along."""
        marks = ",".join("?" * len(from_root_ids))
        self.conn.execute(
            f"UPDATE images SET root_id = ? WHERE root_id IN ({marks})", (to_root_id, *from_root_ids)
        )
        self.conn.execute(
            f"""INSERT OR IGNORE INTO caption_roots (root_id, enabled_at)
                SELECT ?, min(enabled_at) FROM caption_roots WHERE root_id IN ({marks}) HAVING count(*) > 0""",
            (to_root_id, *from_root_ids),
        )

    def reown_images_under(self, from_root_id: int, folder: str | Path, to_root_id: int) -> None:
        """Give the images of `from_root_id` at or below `folder` to `to_root_id`."""
        clause, args = under_folder("path", folder)
        self.conn.execute(
            f"UPDATE images SET root_id = ? WHERE root_id = ? AND {clause}", (to_root_id, from_root_id, *args)
        )

    def delete_root(self, root_id: int) -> None:
        """Forget a root and the rows it still owns (embeddings, tags, captions, errors); files are not touched."""
        ids = "SELECT id FROM images WHERE root_id = ?"
        for table in ("tags", "embeddings", "captions"):
            self.conn.execute(f"DELETE FROM {table} WHERE image_id IN ({ids})", (root_id,))
        self.conn.execute(
            "DELETE FROM errors WHERE path IN (SELECT path FROM images WHERE root_id = ?)", (root_id,)
        )
        self.conn.execute("DELETE FROM images WHERE root_id = ?", (root_id,))
        self.conn.execute("DELETE FROM caption_roots WHERE root_id = ?", (root_id,))
        self.conn.execute("DELETE FROM roots WHERE id = ?", (root_id,))

    def image_rows_under(self, root_id: int, folder: str | Path) -> list[tuple]:
        """(path, id, size, mtime_ns, content_hash, status, width) of `root_id`'s images at or below `folder`."""
        clause, args = under_folder("path", folder)
        return self.conn.execute(
            f"SELECT path, id, size, mtime_ns, content_hash, status, width FROM images WHERE root_id = ? AND {clause}",
            (root_id, *args),
        ).fetchall()

    def mark_in_cloud(self, root_id: int, path: str | Path, size: int, mtime_ns: int, reason: str) -> None:
        """Record an iCloud file that is not on this disk (status 'cloud'); its old vectors stay unsearched."""
        self.conn.execute(
            """INSERT INTO images (root_id, path, size, mtime_ns, status, error) VALUES (?, ?, ?, ?, 'cloud', ?)
               ON CONFLICT(path) DO UPDATE SET status = 'cloud', error = excluded.error, size = excluded.size,
               mtime_ns = excluded.mtime_ns""",
            (root_id, path_to_text(path), size, mtime_ns, reason),
        )
