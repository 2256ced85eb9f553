"""Safe image opening: modes, orientation, draft decoding, metadata, limits and the decode-ahead pool."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageOps

from app.core.decode import DecodeError, decode_ahead, open_image, to_rgb
from tests.builders.images import bomb_png, exif_bytes, jpeg_with_dims, photo, save_jpeg


def test_exif_orientation_is_applied_and_size_reported_upright(tmp_path):
    p = save_jpeg(tmp_path / "r.jpg", photo(60, 40, 1), quality=95, orientation=6)
    d = open_image(p)
    with Image.open(p) as ref:
        expected = np.asarray(ImageOps.exif_transpose(ref).convert("RGB"), np.int16)
    assert d.image.size == (40, 60) and (d.width, d.height) == (40, 60)
    assert np.abs(np.asarray(d.image, np.int16) - expected).max() == 0


def test_jpeg_draft_decodes_reduced_but_records_full_size(tmp_path):
    p = save_jpeg(tmp_path / "big.jpg", photo(4000, 3000, 2), orientation=8)
    d = open_image(p, min_side=448)
    assert (d.width, d.height) == (3000, 4000)  # orientation 8 turns it upright
    assert 448 <= min(d.image.size) < 1500  # DCT scaling to 1/4 gives 750x1000
    full = open_image(p)
    assert full.image.size == (3000, 4000)


def test_exif_date_and_camera_are_recorded(tmp_path):
    p = save_jpeg(tmp_path / "e.jpg", photo(32, 32, 3), taken="2021:06:01 12:30:05", camera="Pentax K-1\x00")
    d = open_image(p)
    assert d.taken_at == "2021-06-01T12:30:05" and d.camera == "Pentax K-1"
    junk = save_jpeg(tmp_path / "j.jpg", photo(32, 32, 3), taken="0000:00:00 00:00:00")
    assert open_image(junk).taken_at is None


def test_corrupt_exif_loses_only_metadata(tmp_path):
    p = tmp_path / "c.jpg"
    photo(48, 32, 4).save(p, "JPEG", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x13" * 40)
    d = open_image(p)
    assert d.image.size == (48, 32) and d.taken_at is None


def test_sixteen_bit_is_scaled_not_clipped():
    a = np.array([[0, 257 * 128, 65535]], np.uint16)
    rgb = np.asarray(to_rgb(Image.fromarray(a)))
    assert rgb[0, :, 0].tolist() == [0, 128, 255] and (rgb[..., 0] == rgb[..., 2]).all()


def test_alpha_is_composited_on_white():
    half_red = Image.new("RGBA", (2, 2), (255, 0, 0, 128))
    assert np.asarray(to_rgb(half_red))[0, 0].tolist() == [255, 127, 127]
    la = Image.new("LA", (1, 1), (0, 0))  # fully transparent black
    assert np.asarray(to_rgb(la))[0, 0].tolist() == [255, 255, 255]


def test_palette_transparency_becomes_white(tmp_path):
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.putpixel((0, 0), 0)
    p = tmp_path / "p.png"
    pal.save(p, transparency=0)
    rgb = np.asarray(open_image(p).image)
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[1, 1].tolist() == [10, 200, 30]


def test_cmyk_matches_pillow_conversion(tmp_path):
    src = photo(32, 24, 5).convert("CMYK")
    p = tmp_path / "k.jpg"
    src.save(p, quality=95)
    with Image.open(p) as ref:
        expected = np.asarray(ref.convert("RGB"), np.int16)
    assert np.abs(np.asarray(open_image(p).image, np.int16) - expected).max() == 0


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((250, 0, 0), (0, 250, 0))]
    p = tmp_path / "a.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    assert np.asarray(open_image(p).image)[0, 0].tolist() == [250, 0, 0]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (bomb_png(), "decompression bomb"),
        (jpeg_with_dims(60000, 60000), "too many pixels"),
        (b"plain text\n" * 10, "not a recognised image"),
    ],
)
def test_bad_files_raise_typed_errors(tmp_path, data, words):
    p = tmp_path / "bad.png"
    p.write_bytes(data)
    with pytest.raises(DecodeError) as e:
        open_image(p)
    assert words in e.value.reason and e.value.path == p


def test_only_whitelisted_formats_open(tmp_path):
    buf = io.BytesIO()
    photo(16, 16, 6).save(buf, "PCX")  # Pillow reads PCX; we refuse it
    (tmp_path / "x.png").write_bytes(buf.getvalue())
    with pytest.raises(DecodeError, match="format"):
        open_image(tmp_path / "x.png")


def test_truncated_jpeg_is_an_error_not_a_partial_image(tmp_path):
    buf = io.BytesIO()
    photo(200, 200, 7).save(buf, "JPEG", exif=exif_bytes(camera="x"))
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[:-3000])
    with pytest.raises(DecodeError, match="truncated"):
        open_image(tmp_path / "t.jpg")


def test_vanished_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_image(tmp_path / "gone.jpg")


def test_decode_ahead_keeps_order_bounds_work_and_reports_errors():
    started, lock = [], threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        if i == 3:
            raise ValueError("boom")
        time.sleep(0.001)
        return i * 10

    seen = []
    for i, fut in decode_ahead(range(40), work, workers=3, depth=5):
        with lock:
            assert len(started) <= len(seen) + 5  # never more than `depth` ahead of the consumer
        seen.append((i, None if fut.exception() else fut.result()))
    assert [i for i, _ in seen] == list(range(40))
    assert seen[3] == (3, None) and seen[4] == (4, 40)


def test_decode_ahead_stops_submitting_when_consumer_breaks():
    calls = []
    for i, _ in decode_ahead(range(1000), calls.append, workers=2, depth=4):
        if i == 2:
            break
    assert len(calls) <= 8
