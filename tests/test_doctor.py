"""`fovea doctor`: checks on sound and damaged libraries, and --repair salvaging what is readable."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.core.backends import l2_normalize
from app.core.doctor import check
from app.core.salvage import SalvageError, _cli_recover, repair
from app.core.store import SCHEMA_VERSION, Store, StoreError, backups_of

N = 1500
DIM = 256  # int8 + float16 per row: ~800 bytes, so the embeddings span a few hundred pages


def build_library(db: Path, n: int = N) -> np.ndarray:
    """A library of n 'ok' images under /photos with one embedding and one tag each; returns the vectors."""
    vectors = l2_normalize(np.random.default_rng(0).standard_normal((n, DIM)).astype(np.float32))
    with Store(db) as s:
        with s.transaction() as conn:
            root = s.add_root("/photos", 0.0)
            conn.executemany(
                "INSERT INTO images (id, root_id, path, size, status, width) VALUES (?, ?, ?, 10, 'ok', 64)",
                [(i, root, f"/photos/{i:05d}.jpg") for i in range(1, n + 1)],
            )
        with s.transaction() as conn:
            s.put_embeddings("m", list(range(1, n + 1)), vectors)
            conn.executemany(
                "INSERT INTO tags (image_id, label, score, status) VALUES (?, 'cat', 0.5, 'auto')",
                [(i,) for i in range(1, n + 1)],
            )
    assert not Path(f"{db}-wal").exists()  # the last close checkpointed: the main file holds everything
    return vectors


def intact_rows(db: Path, vectors: np.ndarray, tmp: Path) -> tuple[int, set[int]]:
    """An independent count of the survivors, by point lookups instead of salvage's range scans:
    (rows a plain rowid-order read gets before the first error, ids whose embedding reads back intact)."""
    copy = tmp / "probe.sqlite"
    data = db.read_bytes()
    copy.write_bytes(data[: len(data) - len(data) % 4096])  # a cut-off page reads back as zeros
    conn = sqlite3.connect(copy)
    conn.execute("PRAGMA writable_schema = ON")  # lets SQLite open a file shorter than its header says
    plain = 0
    try:
        for _ in conn.execute("SELECT * FROM embeddings ORDER BY rowid"):
            plain += 1
    except sqlite3.DatabaseError:
        pass
    intact = set()
    for i in range(1, len(vectors) + 1):
        try:
            row = conn.execute(
                "SELECT vec_f16 FROM embeddings WHERE image_id = ? AND model_id = 'm'", (i,)
            ).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None and np.allclose(np.frombuffer(row[0], np.float16), vectors[i - 1], atol=1e-3):
            intact.add(i)
    conn.close()
    copy.unlink()
    return plain, intact


def assert_rows_are_originals(db: Path, vectors: np.ndarray) -> tuple[int, int]:
    """Every salvaged embedding equals the one written, and belongs to a salvaged image."""
    with Store(db) as s:
        ids = [r[0] for r in s.conn.execute("SELECT id FROM images ORDER BY id")]
        emb_ids, _, _, _ = s.embedding_rows("m")
        assert set(emb_ids.tolist()) <= set(ids)
        f16 = s.f16_vectors("m", emb_ids.tolist()).astype(np.float32)
        assert np.allclose(f16, vectors[emb_ids - 1], atol=1e-3)
        paths = {r[0] for r in s.conn.execute("SELECT path FROM images")}
        assert paths == {f"/photos/{i:05d}.jpg" for i in ids}
        return len(ids), set(emb_ids.tolist())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sound_library_is_healthy_and_repair_leaves_it_alone(tmp_path):
    db = tmp_path / "lib.sqlite"
    build_library(db, 50)
    before = sha(db)
    report = check(db, tmp_path / "thumbs")
    by = {f.check: f for f in report.findings}
    assert by["integrity"].ok and by["foreign_rows"].ok and by["orphan_embeddings"].ok
    assert by["schema"].detail.startswith(f"v{SCHEMA_VERSION}")
    # /photos is not on this machine: reported offline, which is advice, not a fault of the file.
    assert not by["roots_offline"].ok and "/photos" in by["roots_offline"].detail
    assert not report.needs_repair
    assert repair(db).method == "none" and sha(db) == before


def test_truncated_library_is_salvaged_row_by_row_keeping_the_damaged_file(tmp_path):
    db = tmp_path / "lib.sqlite"
    vectors = build_library(db)
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.truncate(size * 6 // 10)
    damaged = sha(db)
    index_file = tmp_path / "lib.sqlite.m-0123456789.fvx"  # a persisted index of the damaged store
    index_file.write_bytes(b"FOVEAIX\0")
    plain, intact = intact_rows(db, vectors, tmp_path)
    report = check(db)
    assert report.damaged and report.needs_repair
    result = repair(db, use_cli=False)
    assert result.method == "row-by-row"
    images, embedded = assert_rows_are_originals(db, vectors)
    assert result.kept["images"] == images and result.kept["embeddings"] == len(embedded)
    # The damage is all at the end: exactly the embeddings that read back intact one by one survive.
    assert embedded == intact and plain <= len(embedded) < N and images == N
    assert result.damaged_copy is not None and sha(result.damaged_copy) == damaged
    assert check(db).findings[0].ok  # integrity of the new file
    assert not index_file.exists() and result.removed["stale index files"] == 1
    print(f"truncated to 60%: kept {images}/{N} images, {len(embedded)}/{N} embeddings (plain read {plain})")


def test_overwritten_pages_are_skipped_and_rows_after_them_kept(tmp_path):
    db = tmp_path / "lib.sqlite"
    vectors = build_library(db)
    conn = sqlite3.connect(db)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    rng = np.random.default_rng(1)
    victims = sorted(rng.choice(np.arange(pages // 3, pages * 2 // 3), size=4, replace=False).tolist())
    with open(db, "r+b") as f:
        for v in victims:
            f.seek(v * page)
            f.write(rng.integers(0, 256, page, dtype=np.uint8).tobytes())
    plain, intact = intact_rows(db, vectors, tmp_path)
    assert check(db).damaged
    result = repair(db, use_cli=False)
    images, embedded = assert_rows_are_originals(db, vectors)
    # Rows past the damage came back; only intact ones, and nearly all of those (a stretch may hide a few).
    assert plain < len(embedded) < N and embedded <= intact and len(embedded) >= 0.95 * len(intact)
    assert result.skipped_ranges >= 1
    assert check(db).findings[0].ok
    print(
        f"4 pages overwritten {victims}: kept {images}/{N} images, {len(embedded)}/{N} embeddings "
        f"({len(intact)} read back intact one by one, plain read {plain})"
    )


def test_unreadable_file_is_refused_and_left_as_it_was(tmp_path):
    db = tmp_path / "lib.sqlite"
    build_library(db, 20)
    with open(db, "r+b") as f:
        f.write(b"\0" * 4096)  # header and schema page gone
    before = sha(db)
    assert check(db).damaged
    with pytest.raises(SalvageError, match="table of contents"):
        repair(db, use_cli=False)
    assert sha(db) == before and sorted(p.name for p in tmp_path.iterdir()) == ["lib.sqlite"]


def test_opening_a_damaged_library_points_to_doctor(tmp_path):
    db = tmp_path / "lib.sqlite"
    db.write_bytes(b"this is not a database" * 300)
    with pytest.raises(StoreError, match="fovea doctor --repair"):
        Store(db)


def test_foreign_rows_are_reported_and_removed_after_a_backup(tmp_path):
    db = tmp_path / "lib.sqlite"
    build_library(db, 30)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DELETE FROM images WHERE id <= 5")  # behind the store's back: 5 orphan embeddings and tags
    conn.execute("UPDATE images SET root_id = 99 WHERE id = 6")  # root row gone; /photos/ still holds it
    conn.close()
    by = {f.check: f for f in check(db).findings}
    assert (by["orphan_embeddings"].count, by["foreign_rows"].count) == (5, 6)
    result = repair(db)
    assert result.method == "cleanup" and result.removed == {"tags": 5, "embeddings": 5}
    assert result.backup is not None and result.backup in backups_of(db)
    assert result.kept["images"] == 25 and result.kept["embeddings"] == 25
    assert not check(db).needs_repair


def test_cli_doctor_repairs_and_reports_in_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    db = tmp_path / "lib.sqlite"
    build_library(db, 400)
    with open(db, "r+b") as f:
        f.truncate(db.stat().st_size // 2)
    assert main(["doctor", str(db)]) == 1
    out = capsys.readouterr().out
    assert "BAD  integrity: database disk image is malformed" in out and "fovea doctor --repair" in out
    assert main(["doctor", str(db), "--repair", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert not info["healthy"] and info["after"]["findings"][0]["ok"]
    assert info["repair"]["kept"]["images"] > 0 and Path(info["repair"]["damaged_copy"]).is_file()
    assert main(["doctor", str(tmp_path / "nothing.sqlite")]) == 1
    assert "no library file there" in capsys.readouterr().err


def test_sqlite3_command_recover_when_the_installed_one_has_it(tmp_path):
    if shutil.which("sqlite3") is None:
        pytest.skip("no sqlite3 command installed (scripts/install.sh installs it)")
    db = tmp_path / "lib.sqlite"
    vectors = build_library(db, 300)
    if _cli_recover(db, tmp_path / "probe.sqlite") is None:
        pytest.skip(
            "this sqlite3 command has no .recover (built without SQLITE_ENABLE_DBPAGE_VTAB, as Debian's)"
        )
    with open(db, "r+b") as f:
        f.truncate(db.stat().st_size * 7 // 10)
    result = repair(db)
    assert result.method == "sqlite3 .recover"
    images, embedded = assert_rows_are_originals(db, vectors)
    assert 0 < len(embedded) < 300 and images > 0


def test_cli_says_where_the_copy_made_before_an_upgrade_is(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    db = tmp_path / "lib.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    from app.core.store import migrate

    migrate(conn, target=1)
    conn.close()
    assert main(["--db", str(db), "status", "--json"]) == 0
    err = capsys.readouterr().err
    (copy,) = backups_of(db)
    assert f"upgraded the library from schema v1; the file as it was is kept at {copy}" in err
    assert "to go back: quit Fovea, then copy that file over" in err
    assert main(["--db", str(db), "status", "--json"]) == 0 and "upgraded" not in capsys.readouterr().err


def test_stale_persisted_indexes_are_reported_and_repair_deletes_only_those(tmp_path):
    from app.core.index_file import index_path, save_index
    from app.core.vector_index import VectorIndex

    db = tmp_path / "lib.sqlite"
    build_library(db, 40)
    with Store(db) as s:
        ids, q, scales, last = s.embedding_rows("m")
        index = VectorIndex(DIM)
        index.add(ids, q, scales)
        current, old = index_path(db, "m"), index_path(db, "old-model")
        save_index(current, index, generation=s.vectors_generation(), last_rowid=last, model_id="m")
        save_index(old, index, generation=s.vectors_generation() - 1, last_rowid=last, model_id="old-model")
    by = {f.check: f for f in check(db).findings}
    assert not by["persisted_index"].ok and by["persisted_index"].detail == "2 index file(s), 1 stale"
    assert not check(db).needs_repair  # a stale index is rebuilt by the next search: advice, not a fault
    result = repair(db)
    assert result.removed == {"stale index files": 1} and current.is_file() and not old.exists()
    assert check(db).healthy is False  # /photos is offline here; everything else is sound
    assert all(f.ok for f in check(db).findings if f.check != "roots_offline")
