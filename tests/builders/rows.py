"""Rows written straight into a store: images (any columns) and images with embeddings, for store-level tests."""

from __future__ import annotations

import numpy as np

from app.core.store import Store


def add_image(store: Store, path: str, status: str = "ok", root: str = "/lib", **cols) -> int:
    """One image row under library root `root` (created if needed); returns its id."""
    root_id = store.add_root(root, 0.0)
    fields = {"root_id": root_id, "path": path, "status": status, **cols}
    with store.transaction() as conn:
        cur = conn.execute(
            f"INSERT INTO images ({','.join(fields)}) VALUES ({','.join('?' * len(fields))})",
            tuple(fields.values()),
        )
    return int(cur.lastrowid)


def add_images(
    store: Store,
    model_id: str,
    vectors: np.ndarray,
    folder: str = "/lib",
    name: str = "img_{:05d}.png",
    root: str | None = None,
    **cols,
) -> list[int]:
    """One 'ok' image per vector, `folder/name.format(n)` with n counting every image in the store, with its
    embedding for `model_id`; the root is `folder` unless given. Returns the ids, in vector order."""
    with store.transaction() as conn:
        root_id = store.add_root(root or folder, 0.0)
        start = conn.execute("SELECT count(*) FROM images").fetchone()[0]
        ids = []
        for k in range(len(vectors)):
            fields = {
                "root_id": root_id,
                "path": f"{folder}/{name.format(start + k)}",
                "status": "ok",
                **cols,
            }
            cur = conn.execute(
                f"INSERT INTO images ({','.join(fields)}) VALUES ({','.join('?' * len(fields))})",
                tuple(fields.values()),
            )
            ids.append(int(cur.lastrowid))
        store.put_embeddings(model_id, ids, np.asarray(vectors, np.float32))
    return ids
