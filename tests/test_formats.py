"""Every photo format people have, from real photographs converted at test time; RAW through LibRaw."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core import decode
from app.core.decode import DecodeError, open_image
from app.core.indexer import index
from app.core.library import FileEntry, WalkStats, walk
from app.core.store import Store
from tests.builders.fake_embedder import FakeEmbedder
from tests.builders.jobs import run_to_end
from tests.builders.real_photos import FORMAT_EXTS, real_photos, sha256s, write_dng, write_formats


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return real_photos()


@pytest.fixture(scope="module")
def formats_dir(tmp_path_factory, photos) -> dict[str, dict[str, Path]]:
    """chelsea in every format; each other real photo in two formats (so every photo and format is used)."""
    root = tmp_path_factory.mktemp("formats")
    out = {"chelsea": write_formats(root / "all", photos["chelsea"], "chelsea")}
    others = [n for n in photos if n != "chelsea"]
    for k, name in enumerate(others):
        exts = (FORMAT_EXTS[(2 * k) % 8], FORMAT_EXTS[(2 * k + 1) % 8])
        out[name] = write_formats(root / "mixed", photos[name], name, exts)
    return out


def _similar(decoded: Image.Image, ref: Image.Image) -> tuple[float, float]:
    """(mean absolute difference in 8-bit levels, correlation) at the reference size."""
    a = np.asarray(decoded.resize(ref.size), np.float32)
    b = np.asarray(ref, np.float32)
    return float(np.abs(a - b).mean()), float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_every_format_decodes_to_the_same_photograph(formats_dir, photos):
    for name, paths in formats_dir.items():
        for ext, p in paths.items():
            d = open_image(p)
            mad, corr = _similar(d.image, photos[name])
            if ext == ".dng":  # demosaiced at half size with LibRaw's tone curve: same picture, other levels
                assert corr > 0.9, (name, ext, corr)
                assert (d.camera, d.taken_at) == ("Fovea Bayer", "2021-06-05T14:03:02")
                assert (d.width, d.height) == (photos[name].width // 2 * 2, photos[name].height // 2 * 2)
            else:
                assert mad < 4.0 and corr > 0.99, (name, ext, mad, corr)
                assert (d.width, d.height) == photos[name].size, (name, ext)


def test_indexing_real_photos_in_every_format_never_writes_them(formats_dir, tmp_path):
    folder = next(iter(formats_dir["chelsea"].values())).parent.parent
    before = sha256s(folder)
    store, emb = Store(tmp_path / "db.sqlite"), FakeEmbedder()
    summary = run_to_end(index(store, emb, [folder], batch_size=8, workers=2))
    n = sum(len(p) for p in formats_dir.values())
    assert (summary.added, summary.embedded, summary.errors) == (n, n, 0)
    assert store.status_counts() == {"ok": n} and store.errors() == []
    assert sha256s(folder) == before
    # Each file's nearest neighbour among the other formats is the same photograph.
    ids, q, scales, _ = store.embedding_rows(emb.model_id)
    names = {i: r.path.stem for i, r in zip(ids, store.image_info(ids), strict=True)}
    v = q.astype(np.float32) * scales[:, None]
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    same = [names[ids[k]] == names[ids[int(np.argmax(sims[k]))]] for k in range(len(ids))]
    assert sum(same) >= 0.9 * len(same), sum(same)


def test_raw_uses_the_embedded_preview_when_large_enough_and_turns_it_upright(monkeypatch, photos, tmp_path):
    rawpy = pytest.importorskip("rawpy")
    buf = io.BytesIO()
    photos["coffee"].save(buf, "JPEG", quality=92)  # 600x400 preview, as a camera embeds one
    calls = []

    class FakeRaw:
        sizes = type("S", (), {"width": 6000, "height": 4000, "flip": 6})()

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def extract_thumb(self):
            return type("T", (), {"format": rawpy.ThumbFormat.JPEG, "data": buf.getvalue()})()

        def postprocess(self, **kw):
            calls.append(kw)
            raise AssertionError("the preview was large enough")

    monkeypatch.setattr(rawpy, "imread", lambda f: FakeRaw())
    p = tmp_path / "IMG_0001.CR3"
    p.write_bytes(b"not parsed by the fake")
    d = open_image(p, min_side=300)
    assert d.image.size == (400, 600) and (d.width, d.height) == (4000, 6000)  # flip 6: 90 degrees clockwise
    assert calls == []
    # A preview smaller than the model needs: half-size demosaic instead.
    FakeRaw.postprocess = lambda self, **kw: calls.append(kw) or np.zeros((2000, 3000, 3), np.uint8)
    d = open_image(p, min_side=500)
    assert calls and calls[0]["half_size"] is True and min(d.image.size) >= 500


def test_a_dng_from_a_bayer_mosaic_goes_through_libraw(photos, tmp_path):
    p = write_dng(tmp_path / "rocket.dng", photos["rocket"], model="Rocket Cam", taken="2019:07:16 13:32:00")
    d = open_image(p)
    assert (d.camera, d.taken_at) == ("Rocket Cam", "2019-07-16T13:32:00")
    assert d.image.size == (320, 213) and _similar(d.image, photos["rocket"])[1] > 0.9


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bad.nef", b"\x00garbage" * 64, "RAW format we cannot read: .nef"),
        ("cut.dng", b"II*\x00\x08\x00\x00\x00\x05\x00", "RAW"),
        ("fake.avif", b"\x00\x00\x00\x1cftypavif" + b"\x00" * 40, "not a recognised image"),
        ("fake.jp2", b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 40, ""),
    ],
)
def test_broken_files_of_new_formats_get_a_reason(tmp_path, name, data, reason):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(DecodeError) as e:
        open_image(p)
    assert reason in e.value.reason and str(p) in str(e.value)


def test_heic_without_its_plugin_says_which_package_is_missing(formats_dir, monkeypatch):
    monkeypatch.setattr(decode, "HEIF_FORMATS", ())
    monkeypatch.setattr(decode, "FORMATS", tuple(f for f in decode.FORMATS if f != "HEIF"))
    with pytest.raises(DecodeError, match="pillow-heif"):
        open_image(formats_dir["chelsea"][".heic"])


def test_a_multipage_float_tiff_pillow_refuses_is_read_through_tifffile():
    from skimage import data

    p = (
        Path(data.__file__).parent / "multipage_rgb.tif"
    )  # planar float64 RGB: Pillow says "unknown pixel mode"
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(p)
    d = open_image(p)
    assert d.image.mode == "RGB" and d.image.size == (10, 10)


def test_walk_finds_images_by_signature_and_counts_other_files(tmp_path, photos):
    photos["astronaut"].save(tmp_path / "IMG_from_chat", "JPEG")
    (tmp_path / "notes").write_text("shopping list")
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "clip.mov").write_bytes(b"\x00" * 16)
    photos["astronaut"].save(tmp_path / "a.HEIC.jpg", "JPEG")
    stats = WalkStats()
    found = sorted(e.path.name for e in walk(tmp_path, stats=stats) if isinstance(e, FileEntry))
    assert found == ["IMG_from_chat", "a.HEIC.jpg"] and stats.other_files == 3
    assert open_image(tmp_path / "IMG_from_chat").image.size == (512, 512)
