"""Indexing a folder of odd and broken files prints only Fovea's own lines: no warnings, no libtiff chatter."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core.paths import demo_model_dir
from tests.builders.images import hostile_corpus
from tests.builders.real_photos import real_photos, sha256s, write_formats

# Everything `fovea index` may print on stderr: its summary, per-file errors, notes, offline roots.
OWN = re.compile(
    r"^(indexed: \d+ embedded, .*"
    r"|error: .+: .+"
    r"|\.\.\. and \d+ more \(fovea status --json lists them all\)"
    r"|note: .*|skipped the Photos library .*|.* is inside the library .*|offline: .*)$"
)


def noisy_files(folder: Path) -> None:
    """Files whose decoders talk: a truncated deflate TIFF (libtiff / tifffile), corrupt EXIF (a warning)."""
    folder.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "TIFF", compression="tiff_adobe_deflate")
    (folder / "cut_scan.tif").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    strips = io.BytesIO()
    Image.fromarray(arr).save(strips, "TIFF", compression="tiff_adobe_deflate", strip_size=4096)
    data = bytearray(strips.getvalue())
    data[len(data) // 3 : len(data) // 3 + 2000] = b"\x00" * 2000  # damaged strips, intact directory
    (folder / "damaged_strips.tif").write_bytes(bytes(data))


@pytest.mark.skipif(not demo_model_dir().is_dir(), reason="the bundled demo model is missing")
def test_index_of_odd_and_broken_files_prints_only_foveas_own_lines(tmp_path):
    lib = tmp_path / "odd"
    hostile_corpus(lib / "hostile")
    noisy_files(lib / "noisy")
    write_formats(lib / "real", real_photos()["coffee"], "coffee")
    before = sha256s(lib / "real")
    env = {**os.environ, "FOVEA_DATA_DIR": str(tmp_path / "data"), "PYTHONWARNINGS": "default"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    cmd = [
        sys.executable,
        "-m",
        "app",
        "--db",
        str(tmp_path / "db.sqlite"),
        "--backend",
        "mlx",
        "index",
        str(lib),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in re.split(r"[\r\n]+", r.stderr) if ln.strip()]
    strange = [ln for ln in lines if not OWN.match(ln)]
    assert strange == [], strange
    assert any(ln.startswith("indexed: ") for ln in lines) and any("cut_scan.tif" in ln for ln in lines)
    assert sha256s(lib / "real") == before
