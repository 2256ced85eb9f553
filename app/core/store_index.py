"""The store's writes for indexing: roots, embeddings, per-file errors, and the images table kept in
line with a scan (app.core.library decides what changed, app.core.indexer what was decoded).

A mixin of `Store` (kept apart to keep files small): every SQL statement still lives in the store.
Call these inside `transaction()`, except `forget_images`, which is one transaction of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from app.core.store_paths import path_to_text, text_to_path


class StoreIndex:
    conn: sqlite3.Connection
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def add_root(self, path: str | Path, now: float) -> int:
        text = path_to_text(path)
        self.conn.execute(
            "INSERT OR IGNORE INTO roots (path, state, added_at) VALUES (?, 'online', ?)", (text, now)
        )
        return int(self.conn.execute("SELECT id FROM roots WHERE path = ?", (text,)).fetchone()[0])

    def set_root_state(self, root_id: int, state: str) -> None:
        self.conn.execute("UPDATE roots SET state = ? WHERE id = ?", (state, root_id))

    def put_embeddings(self, model_id: str, image_ids: Sequence[int], vectors: np.ndarray) -> None:
        """Store L2-normalised (n, d) vectors as int8 + scale and float16; replacing gives a new rowid."""
        from app.core.vectors import quantize_int8

        q, scales = quantize_int8(vectors)
        f16 = np.asarray(vectors, np.float16)
        self.conn.executemany(
            "INSERT OR REPLACE INTO embeddings (image_id, model_id, vec_i8, scale, vec_f16) VALUES (?, ?, ?, ?, ?)",
            [
                (int(i), model_id, q[k].tobytes(), float(scales[k]), f16[k].tobytes())
                for k, i in enumerate(image_ids)
            ],
        )

    def forget_images(self, image_ids: Sequence[int]) -> None:
        """Drop images (and their embeddings, tags and captions) from the library; files are not touched."""
        with self.transaction() as c:
            for table, col in (
                ("tags", "image_id"),
                ("embeddings", "image_id"),
                ("captions", "image_id"),
                ("images", "id"),
            ):
                c.executemany(f"DELETE FROM {table} WHERE {col} = ?", [(int(i),) for i in image_ids])

    def record_error(self, path: str | Path, reason: str, now: float) -> None:
        """Keep the latest error per path (a rerun replaces it instead of piling up copies)."""
        text = path_to_text(path)
        self.conn.execute("DELETE FROM errors WHERE path = ?", (text,))
        self.conn.execute("INSERT INTO errors (path, reason, time) VALUES (?, ?, ?)", (text, reason, now))

    def clear_error(self, path: str | Path) -> None:
        self.conn.execute("DELETE FROM errors WHERE path = ?", (path_to_text(path),))

    # ---- what the indexer embeds and what it learnt from decoding ------------------------------

    def todo_images(
        self, model_id: str, root_ids: Sequence[int], pending_only: bool = False
    ) -> list[tuple[int, Path]]:
        """(id, path) of pending images of `root_ids`, and 'ok' ones without an embedding for `model_id`
        (a model change re-embeds). `pending_only` is cheap: it goes through the status index."""
        if not root_ids:
            return []
        marks = ",".join("?" * len(root_ids))
        unembedded = (
            ""
            if pending_only
            else """ OR (status = 'ok'
              AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.model_id = ?))"""
        )
        rows = self.conn.execute(
            f"""SELECT id, path FROM images i WHERE root_id IN ({marks}) AND (status = 'pending'{unembedded})
                ORDER BY id""",
            (*root_ids,) if pending_only else (*root_ids, model_id),
        ).fetchall()
        return [(int(i), text_to_path(p)) for i, p in rows]

    def embedded_count_in(self, model_id: str, root_ids: Sequence[int]) -> int:
        """'ok' images of `root_ids` holding an embedding for `model_id`."""
        if not root_ids:
            return 0
        marks = ",".join("?" * len(root_ids))
        return self.conn.execute(
            f"""SELECT count(*) FROM images i JOIN embeddings e ON e.image_id = i.id AND e.model_id = ?
                WHERE i.root_id IN ({marks}) AND i.status = 'ok'""",
            (model_id, *root_ids),
        ).fetchone()[0]

    def mark_decoded(self, rows: Sequence[tuple], now: float) -> None:
        """Images read and embedded: `rows` of (width, height, taken_at, camera, decode_notes, id)."""
        self.conn.executemany(
            """UPDATE images SET status = 'ok', error = NULL, width = ?, height = ?, taken_at = ?, camera = ?,
               indexed_at = ?, decode_notes = ? WHERE id = ?""",
            [(w, h, t, cam, now, notes, i) for w, h, t, cam, notes, i in rows],
        )

    def mark_missing(self, image_id: int) -> None:
        """The file is gone; its row, vectors, tags and captions are kept for when it comes back."""
        self.conn.execute("UPDATE images SET status = 'missing' WHERE id = ?", (image_id,))

    def mark_failed(self, image_id: int, reason: str, now: float, notes: str | None) -> None:
        self.conn.execute(
            "UPDATE images SET status = 'error', error = ?, indexed_at = ?, decode_notes = ? WHERE id = ?",
            (reason, now, notes, image_id),
        )

    # ---- the images table kept in line with a scan (app.core.library) --------------------------

    def missing_images(self) -> list[tuple[int, int, str]]:
        """(id, size, content_hash) of images marked missing: rows a new file may have been moved from."""
        return self.conn.execute(
            "SELECT id, size, content_hash FROM images WHERE status = 'missing'"
        ).fetchall()

    def touch_image(self, image_id: int, mtime_ns: int) -> None:
        """Same content, new modification time."""
        self.conn.execute("UPDATE images SET mtime_ns = ? WHERE id = ?", (mtime_ns, image_id))

    def replace_content(self, image_id: int, size: int, mtime_ns: int, content_hash: str) -> None:
        """New content at the same path: old vectors and machine guesses are stale; user decisions stay."""
        ex = self.conn.execute
        ex(
            """UPDATE images SET size = ?, mtime_ns = ?, content_hash = ?, status = 'pending', error = NULL,
               width = NULL, height = NULL, taken_at = NULL, camera = NULL WHERE id = ?""",
            (size, mtime_ns, content_hash, image_id),
        )
        ex("DELETE FROM embeddings WHERE image_id = ?", (image_id,))
        ex("DELETE FROM tags WHERE image_id = ? AND status IN ('auto', 'review')", (image_id,))
        ex("DELETE FROM captions WHERE image_id = ?", (image_id,))

    def move_image(self, image_id: int, path: str | Path, root_id: int, mtime_ns: int) -> int | None:
        """A renamed or moved file keeps its row (embeddings, tags, captions); returns its width."""
        width = self.conn.execute("SELECT width FROM images WHERE id = ?", (image_id,)).fetchone()[0]
        self.conn.execute(
            "UPDATE images SET path = ?, root_id = ?, mtime_ns = ? WHERE id = ?",
            (path_to_text(path), root_id, mtime_ns, image_id),
        )
        return width

    def add_image(self, root_id: int, path: str | Path, size: int, mtime_ns: int, content_hash: str) -> None:
        """A new file, to be decoded and embedded ('pending')."""
        self.conn.execute(
            "INSERT INTO images (root_id, path, size, mtime_ns, content_hash, status) VALUES (?, ?, ?, ?, ?, 'pending')",
            (root_id, path_to_text(path), size, mtime_ns, content_hash),
        )

    def restore_image(self, image_id: int, width: int | None) -> None:
        """Back from 'missing': 'ok' if it was decoded before, and embeddings re-inserted so their rowids
        are new and an incremental search refresh (`embedding_rows(after_rowid=...)`) picks them up again."""
        ex = self.conn.execute
        ex("UPDATE images SET status = ? WHERE id = ?", ("ok" if width is not None else "pending", image_id))
        rows = ex(
            "SELECT model_id, vec_i8, scale, vec_f16 FROM embeddings WHERE image_id = ?", (image_id,)
        ).fetchall()
        ex("DELETE FROM embeddings WHERE image_id = ?", (image_id,))
        self.conn.executemany(
            "INSERT INTO embeddings (image_id, model_id, vec_i8, scale, vec_f16) VALUES (?, ?, ?, ?, ?)",
            [(image_id, *r) for r in rows],
        )

    def put_error_image(self, root_id: int, path: str | Path, reason: str, now: float) -> None:
        """A file that cannot be read keeps a row with status 'error' (added, or an existing one updated)."""
        self.conn.execute(
            """INSERT INTO images (root_id, path, status, error, indexed_at) VALUES (?, ?, 'error', ?, ?)
               ON CONFLICT(path) DO UPDATE SET status = 'error', error = excluded.error, indexed_at = excluded.indexed_at""",
            (root_id, path_to_text(path), reason, now),
        )
