"""The store's reads for search and `fovea status`: embeddings, records, filters, counts, errors, roots.

A mixin of `Store` (kept apart to keep files small): every SQL statement still lives in the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.core.store_paths import path_to_text, text_to_path
from app.core.store_views import APPLIED, under_folder

if TYPE_CHECKING:
    from app.core.contracts import Filters  # contracts imports the tagger, which imports the store


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: Path
    width: int | None
    height: int | None
    taken_at: str | None
    camera: str | None
    status: str
    error: str | None
    size: int | None
    root: Path | None


class StoreReads:
    conn: sqlite3.Connection

    # ---- reads for search --------------------------------------------------------------------

    def embedding_rows(
        self, model_id: str, after_rowid: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Embeddings of 'ok' images added after `after_rowid`: (ids (n,), int8 (n, d), scales (n,), last rowid).

        A re-embedded or reappearing image gets a new rowid, so an id may repeat: the later row wins.
        """
        rows = self.conn.execute(
            """SELECT e.rowid, e.image_id, e.vec_i8, e.scale FROM embeddings e JOIN images i ON i.id = e.image_id
               WHERE e.model_id = ? AND i.status = 'ok' AND e.rowid > ? ORDER BY e.rowid""",
            (model_id, after_rowid),
        ).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.int8), np.zeros(0, np.float32), after_rowid
        ids = np.fromiter((r[1] for r in rows), np.int64, len(rows))
        q = np.frombuffer(b"".join(r[2] for r in rows), np.int8).reshape(len(rows), -1)  # (n, d)
        scales = np.fromiter((r[3] for r in rows), np.float32, len(rows))
        return ids, q, scales, int(rows[-1][0])

    def f16_rows(self, model_id: str, upto_rowid: int) -> tuple[np.ndarray, np.ndarray]:
        """float16 vectors of 'ok' images with an embeddings rowid <= `upto_rowid`: (ids (n,), (n, d)),
        in rowid order (an id may repeat: the later row wins). Read in slices, never one list of rows."""
        cur = self.conn.execute(
            """SELECT e.image_id, e.vec_f16 FROM embeddings e JOIN images i ON i.id = e.image_id
               WHERE e.model_id = ? AND i.status = 'ok' AND e.rowid <= ? ORDER BY e.rowid""",
            (model_id, upto_rowid),
        )
        ids: list[np.ndarray] = []
        vecs: list[np.ndarray] = []
        while rows := cur.fetchmany(50_000):
            ids.append(np.fromiter((r[0] for r in rows), np.int64, len(rows)))
            vecs.append(np.frombuffer(b"".join(r[1] for r in rows), np.float16).reshape(len(rows), -1))
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float16)
        return np.concatenate(ids), np.concatenate(vecs)

    def vectors_generation(self) -> int:
        """Bumped (by triggers) whenever an embedding is deleted or an image leaves 'ok'; appends do not bump it."""
        return int(self.conn.execute("SELECT value FROM vectors_generation WHERE id = 0").fetchone()[0])

    def last_embedding_rowid(self) -> int:
        """The highest embeddings rowid (0 when empty): a file claiming a later one is from another store."""
        return int(self.conn.execute("SELECT coalesce(max(rowid), 0) FROM embeddings").fetchone()[0])

    def f16_vectors(self, model_id: str, image_ids: Sequence[int]) -> np.ndarray:
        """float16 (len(ids), d) in the order given; rows of ids without an embedding are zero."""
        sql = "SELECT image_id, vec_f16 FROM embeddings WHERE model_id = ? AND image_id IN"
        found = self._by_id(sql, (model_id,), image_ids)
        if not found:
            return np.zeros((len(image_ids), 0), np.float16)
        d = len(next(iter(found.values()))[0]) // 2
        out = np.zeros((len(image_ids), d), np.float16)
        for k, i in enumerate(image_ids):
            if int(i) in found:
                out[k] = np.frombuffer(found[int(i)][0], np.float16)
        return out

    def image_info(self, image_ids: Sequence[int]) -> list[ImageRecord]:
        """Records in the order given; unknown ids are left out."""
        found = self._by_id(
            """SELECT i.id, i.path, i.width, i.height, i.taken_at, i.camera, i.status, i.error, i.size, r.path
               FROM images i LEFT JOIN roots r ON r.id = i.root_id WHERE i.id IN""",
            (),
            image_ids,
        )
        out = []
        for i in image_ids:
            r = found.get(int(i))
            if r is not None:
                root = text_to_path(r[8]) if r[8] is not None else None
                out.append(ImageRecord(int(i), text_to_path(r[0]), *r[1:8], root))
        return out

    def _by_id(self, sql: str, args: tuple, ids: Sequence[int]) -> dict[int, tuple]:
        out: dict[int, tuple] = {}
        ids = [int(i) for i in ids]
        for k in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
            chunk = ids[k : k + 900]
            q = f"{sql} ({','.join('?' * len(chunk))})"
            for row in self.conn.execute(q, (*args, *chunk)):
                out[int(row[0])] = tuple(row[1:])
        return out

    def ids_matching(self, filters: Filters) -> np.ndarray | None:
        """Sorted int64 ids of 'ok' images passing every filter that is set; None when none is.

        `folder` is a path prefix, dates compare on ISO text (`date_to` is inclusive at its precision:
        "2023-05" covers all of May), `camera` is a case-insensitive substring, `tag` needs an
        auto or confirmed tag with that label.
        """
        folder, date_from, date_to = filters.folder, filters.date_from, filters.date_to
        camera, tag = filters.camera, filters.tag
        where, args = [], []
        if folder:
            clause, more = under_folder("i.path", folder)
            where.append(clause)
            args += more
        if date_from:
            where.append("i.taken_at >= ?")
            args.append(date_from)
        if date_to:
            where.append("substr(i.taken_at, 1, length(?)) <= ?")
            args += [date_to, date_to]
        if camera:
            where.append("i.camera LIKE ? ESCAPE '\\'")
            args.append("%" + camera.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if tag:
            where.append(
                f"EXISTS (SELECT 1 FROM tags t WHERE t.image_id = i.id AND t.label = ? AND t.{APPLIED})"
            )
            args.append(tag)
        if not where:
            return None
        sql = f"SELECT i.id FROM images i WHERE i.status = 'ok' AND {' AND '.join(where)} ORDER BY i.id"
        return np.array([r[0] for r in self.conn.execute(sql, args)], dtype=np.int64)

    def image_id_for_path(self, path: str | Path) -> int | None:
        row = self.conn.execute("SELECT id FROM images WHERE path = ?", (path_to_text(path),)).fetchone()
        return None if row is None else int(row[0])

    # ---- summaries for `fovea status` -----------------------------------------------------------

    def embedded_count(self, model_id: str) -> int:
        """Images ready to search with `model_id` (status 'ok' with an embedding of that model)."""
        sql = """SELECT count(*) FROM embeddings e JOIN images i ON i.id = e.image_id
                 WHERE e.model_id = ? AND i.status = 'ok'"""
        return int(self.conn.execute(sql, (model_id,)).fetchone()[0])

    def status_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall())

    def errors(self, limit: int | None = None) -> list[tuple[Path, str, float]]:
        """Recorded per-file errors, newest first: (path, reason, time)."""
        sql = "SELECT path, reason, time FROM errors ORDER BY time DESC, id DESC"
        rows = self.conn.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        return [(text_to_path(p), r, t) for p, r, t in rows]

    def roots(self) -> list[tuple[int, Path, str]]:
        """(id, path, state) per library root."""
        return [
            (i, text_to_path(p), s)
            for i, p, s in self.conn.execute("SELECT id, path, state FROM roots ORDER BY id")
        ]
