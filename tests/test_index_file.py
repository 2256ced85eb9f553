"""The persisted search index: trusted only when intact and current, rebuilt otherwise."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from app.core.index_file import IndexFileError, index_path, load_index, read_header, save_index
from app.core.vector_index import IndexConfig, VectorIndex
from app.core.vectors import quantize_int8

CFG = IndexConfig(exhaustive_below=500, prefix_dims=16, first_pass=64, min_rescore_cap=256)


def _index(n: int = 1500, d: int = 64, seed: int = 0) -> tuple[VectorIndex, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = VectorIndex(d, CFG)
    q, s = quantize_int8(x)
    index.add(np.arange(1, n + 1), q, s)
    return index, x


def test_a_saved_index_loads_and_answers_like_the_original(tmp_path):
    index, x = _index()
    index.remove(np.array([5, 6]))  # retired rows are not written
    path = tmp_path / "lib.fvx"
    save_index(path, index, generation=3, last_rowid=1500, model_id="m")
    loaded = load_index(path, model_id="m", dim=64, generation=3, config=CFG)
    assert loaded.last_rowid == 1500 and len(loaded.index) == 1498 and loaded.index.fitted
    for q in x[:5]:
        a, b = index.search(q, 20), loaded.index.search(q, 20)
        assert a.ids.tolist() == b.ids.tolist()
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    # The mapped index still grows and prunes (copy-on-write: the file is unchanged).
    before = path.read_bytes()
    q8, s8 = quantize_int8(x[:1])
    loaded.index.add(np.array([9999]), q8, s8)
    loaded.index.remove(np.array([7]))
    assert set(loaded.index.search(x[0], 2).ids.tolist()) == {1, 9999}  # the same vector twice
    assert 7 not in loaded.index.search(x[6], 50).ids
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "change, match",
    [
        ({"generation": 4}, "generation is 3"),
        ({"model_id": "other"}, "model_id is 'm'"),
        ({"dim": 32}, "dim is 64"),
    ],
)
def test_a_stale_or_foreign_file_is_refused(tmp_path, change, match):
    index, _ = _index()
    path = tmp_path / "lib.fvx"
    save_index(path, index, generation=3, last_rowid=1, model_id="m")
    args = {"model_id": "m", "dim": 64, "generation": 3, **change}
    with pytest.raises(IndexFileError, match=match):
        load_index(path, **args)


def test_missing_truncated_or_damaged_files_are_refused(tmp_path):
    index, _ = _index()
    path = tmp_path / "lib.fvx"
    with pytest.raises(IndexFileError, match="no index file"):
        load_index(path, model_id="m", dim=64, generation=0)
    save_index(path, index, generation=0, last_rowid=1, model_id="m")
    good = path.read_bytes()
    cases = {
        "truncated": good[: len(good) - 100],
        "header damaged": good[:20] + bytes([good[20] ^ 0x01]) + good[21:],
        "array bit flipped": good[:-3000] + bytes([good[-3000] ^ 0x10]) + good[-2999:],
        "empty": b"",
        "not ours": b"PK\x03\x04" + good[4:],
    }
    for data in cases.values():
        path.write_bytes(data)
        with pytest.raises(IndexFileError):
            load_index(path, model_id="m", dim=64, generation=0)


def test_one_flipped_bit_anywhere_in_any_array_is_refused(tmp_path):
    index, _ = _index()
    path = tmp_path / "lib.fvx"
    save_index(path, index, generation=0, last_rowid=1, model_id="m")
    good = path.read_bytes()
    header = read_header(path)
    base = -(-(16 + struct.unpack("<8sII", good[:16])[1]) // 64) * 64  # preamble + header, 64-aligned
    rng = np.random.default_rng(0)
    flipped = 0
    for name, spec in header["arrays"].items():
        nbytes = int(np.prod(spec["shape"])) * np.dtype(spec["dtype"]).itemsize
        for at in {0, nbytes - 1, *rng.integers(0, nbytes, 3).tolist()}:
            pos = base + spec["offset"] + at
            path.write_bytes(good[:pos] + bytes([good[pos] ^ (1 << int(rng.integers(8)))]) + good[pos + 1 :])
            with pytest.raises(IndexFileError, match=f"checksum of {name}"):
                load_index(path, model_id="m", dim=64, generation=0)
            flipped += 1
    assert set(header["arrays"]) == {"ids", "pre", "rest", "sp", "sr", "rot"} and flipped >= 6 * 3
    path.write_bytes(good)
    assert len(load_index(path, model_id="m", dim=64, generation=0).index) == len(index)


def test_index_files_sit_beside_the_database_one_per_model(tmp_path):
    a = index_path(tmp_path / "lib.sqlite", "clip/ViT-B:32")
    b = index_path(tmp_path / "lib.sqlite", "siglip")
    assert a.parent == tmp_path and a != b and a.name.startswith("lib.sqlite.clip_ViT-B_32-")
