"""Scanning and the partial content hash."""

from __future__ import annotations

import os
from pathlib import Path

from app.core import library
from app.core.library import FileEntry, Problem, partial_hash, walk
from tests.builders.images import photo, save_jpeg


def _files(root: Path) -> list[str]:
    return [str(e.path.relative_to(root)) for e in walk(root) if isinstance(e, FileEntry)]


def test_walk_is_recursive_and_skips_hidden_and_system_folders(tmp_path):
    for rel in ["a.jpg", "B.JPEG", "x/c.png", "x/y/d.webp", "e.tif", "f.bmp", "g.gif", "h.txt", ".hid.jpg"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    for d in [".fovea", ".Trashes", "@eaDir", "$RECYCLE.BIN", "System Volume Information", ".git"]:
        (tmp_path / d).mkdir()
        (tmp_path / d / "z.jpg").write_bytes(b"x")
    assert sorted(_files(tmp_path)) == ["B.JPEG", "a.jpg", "e.tif", "f.bmp", "g.gif", "x/c.png", "x/y/d.webp"]


def test_walk_follows_symlinks_and_reports_loops_and_broken_links(tmp_path):
    lib, outside = tmp_path / "lib", tmp_path / "outside"
    (lib / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "o.jpg").write_bytes(b"x")
    (lib / "sub" / "s.jpg").write_bytes(b"x")
    (lib / "linked_file.jpg").symlink_to(outside / "o.jpg")
    (lib / "linked_dir").symlink_to(outside, target_is_directory=True)
    (lib / "sub" / "up").symlink_to(lib, target_is_directory=True)  # a loop
    (lib / "dead.jpg").symlink_to(tmp_path / "nowhere.jpg")
    items = list(walk(lib))
    assert sorted(_files(lib)) == ["linked_dir/o.jpg", "linked_file.jpg", "sub/s.jpg"]
    problems = {p.path.name: p for p in items if isinstance(p, Problem)}
    assert problems["up"].reason.startswith("symlink loop") and not problems["up"].is_file
    assert problems["dead.jpg"].reason == "broken symlink" and problems["dead.jpg"].is_file


def test_walk_handles_undecodable_and_odd_names(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9_latin1.jpg")  # not UTF-8
    open(raw, "wb").close()
    (tmp_path / "new\nline ☃ \u202e.png").write_bytes(b"x")
    (tmp_path / "dir.jpg").mkdir()  # a folder named like an image is a folder
    (tmp_path / "dir.jpg" / "in.jpg").write_bytes(b"x")
    names = sorted(_files(tmp_path))
    assert names == sorted(["caf\udce9_latin1.jpg", "dir.jpg/in.jpg", "new\nline ☃ \u202e.png"])


def test_walk_skips_a_file_deleted_between_listing_and_stat(tmp_path, monkeypatch):
    for n in "abc":
        (tmp_path / f"{n}.jpg").write_bytes(b"x")
    real = os.stat

    def vanishing(path, *a, **k):
        if Path(path).name == "b.jpg" and Path(path).exists():
            Path(path).unlink()
        return real(path, *a, **k)

    monkeypatch.setattr(library, "_stat", vanishing)
    assert sorted(_files(tmp_path)) == ["a.jpg", "c.jpg"]


def test_walk_reports_unlistable_subfolders(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.jpg").write_bytes(b"x")
    os.chmod(locked, 0)
    try:
        problems = [p for p in walk(tmp_path) if isinstance(p, Problem)]
    finally:
        os.chmod(locked, 0o755)
    if os.access(locked, os.R_OK | os.X_OK) and os.geteuid() == 0:  # root lists anything
        assert problems == []
    else:
        assert problems and problems[0].reason.startswith("cannot list folder")


def test_partial_hash_follows_content_not_name(tmp_path):
    a = save_jpeg(tmp_path / "a.jpg", photo(64, 64, 1))
    b = tmp_path / "renamed.jpg"
    b.write_bytes(a.read_bytes())
    assert partial_hash(a, a.stat().st_size) == partial_hash(b, b.stat().st_size)
    c = save_jpeg(tmp_path / "c.jpg", photo(64, 64, 2))
    assert partial_hash(a, a.stat().st_size) != partial_hash(c, c.stat().st_size)


def test_partial_hash_reads_head_and_tail_of_large_files(tmp_path):
    data = bytearray(os.urandom(5 << 20))
    p = tmp_path / "big.bin"
    p.write_bytes(bytes(data))
    h0 = partial_hash(p, len(data))
    data[len(data) // 2] ^= 0xFF  # the middle is not sampled: a known, accepted blind spot
    p.write_bytes(bytes(data))
    assert partial_hash(p, len(data)) == h0
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    assert partial_hash(p, len(data)) != h0
