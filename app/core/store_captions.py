"""The store's caption rows: per-library opt-in, the captioner's to-do list, writes; exact-duplicate groups.

A mixin of `Store` (kept apart to keep files small): every SQL statement still lives in the store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.core.store_paths import path_to_text, text_to_path

_OPTED_OK = "FROM images i JOIN caption_roots c ON c.root_id = i.root_id WHERE i.status = 'ok'"
_HAS_CAPTION = "EXISTS (SELECT 1 FROM captions x WHERE x.image_id = i.id AND x.model_id = ?)"


class StoreCaptions:
    conn: sqlite3.Connection

    def root_id(self, root: str | Path) -> int | None:
        row = self.conn.execute("SELECT id FROM roots WHERE path = ?", (path_to_text(root),)).fetchone()
        return None if row is None else int(row[0])

    def set_caption_root(self, root_id: int, enabled: bool, now: float) -> None:
        """Opt a root in to (or out of) captioning (call inside `transaction()`)."""
        if enabled:
            self.conn.execute(
                "INSERT OR IGNORE INTO caption_roots (root_id, enabled_at) VALUES (?, ?)", (root_id, now)
            )
        else:
            self.conn.execute("DELETE FROM caption_roots WHERE root_id = ?", (root_id,))

    def caption_roots(self) -> list[Path]:
        rows = self.conn.execute(
            "SELECT r.path FROM roots r JOIN caption_roots c ON c.root_id = r.id ORDER BY r.id"
        ).fetchall()
        return [text_to_path(p) for (p,) in rows]

    def uncaptioned(self, model_id: str) -> tuple[list[tuple[int, Path]], int]:
        """('ok' images of opted-in roots without a caption by this model, count already captioned)."""
        rows = self.conn.execute(
            f"SELECT i.id, i.path {_OPTED_OK} AND NOT {_HAS_CAPTION} ORDER BY i.id", (model_id,)
        ).fetchall()
        done = self.conn.execute(f"SELECT count(*) {_OPTED_OK} AND {_HAS_CAPTION}", (model_id,)).fetchone()[0]
        return [(int(i), text_to_path(p)) for i, p in rows], int(done)

    def put_caption(self, image_id: int, model_id: str, text: str, now: float) -> None:
        """Write one caption (call inside `transaction()`); replaces this model's earlier one."""
        self.conn.execute(
            "INSERT OR REPLACE INTO captions (image_id, model_id, text, created_at) VALUES (?, ?, ?, ?)",
            (image_id, model_id, text, now),
        )

    def has_caption_error(self, path: str | Path) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM errors WHERE path = ? AND reason LIKE 'caption:%'", (path_to_text(path),)
        ).fetchone()
        return row is not None

    def exact_duplicate_ids(self) -> list[list[int]]:
        """Ids of 'ok' images sharing size and content hash, each group smallest id first."""
        rows = self.conn.execute(
            """SELECT group_concat(id) FROM (SELECT id, size, content_hash FROM images
                   WHERE status = 'ok' AND content_hash IS NOT NULL ORDER BY id)
               GROUP BY size, content_hash HAVING count(*) > 1"""
        ).fetchall()
        return sorted(sorted(int(i) for i in r[0].split(",")) for r in rows)
