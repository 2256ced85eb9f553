"""`app.core.explain` and `fovea explain`: occlusion maps point at what the query names, on both backends."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from app.core.backends import l2_normalize, open_embedder
from app.core.errors import UsageError
from app.core.explain import explain, heat_image, input_geometry, run_to_end
from app.core.paths import demo_model_dir
from training import scenes
from training.pointing import pointing_game, pointing_items

MODEL = demo_model_dir()
POINTING_N = 40  # scenes in the pointing game; the figure is exact for this fixed seed


def _prompt(colour: str, kind: str) -> str:
    return scenes.class_prompts()[(colour, kind)]


@pytest.fixture(scope="module")
def demo():
    return open_embedder(MODEL, "mlx")


class CellEmbedder:
    """A fake whose image vector is the mean of one grid cell's pixels: only that cell can matter."""

    model_id, model_type, dim, logit_scale, logit_bias = "fake-cell", "clip", 3, 1.0, None
    patch_size = 4

    def __init__(self, cell: tuple[int, int]) -> None:
        self.cell = cell

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB").resize((32, 32)), np.float32) / 255 - 0.5

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        r, c = self.cell
        p = self.patch_size
        return l2_normalize(
            pixels[:, r * p : (r + 1) * p, c * p : (c + 1) * p].mean(axis=(1, 2)) + [0, 0, 0.01]
        )

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_pixels(np.stack([self.preprocess(i) for i in images]))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


def test_the_peak_is_the_only_cell_the_fake_model_looks_at():
    img = Image.new("RGB", (64, 64), (250, 20, 20))
    for cell in [(2, 5), (0, 0), (7, 3)]:
        emb = CellEmbedder(cell)
        q = emb.embed_images([img])[0]
        e = run_to_end(explain(emb, img, q, window=1, coarse_stride=1))
        assert e.grid.shape == (8, 8)
        assert np.unravel_index(int(np.argmax(e.grid)), e.grid.shape) == cell
        assert np.count_nonzero(np.abs(e.grid) > 1e-6) == 1  # a 1x1 window touches nothing else
        assert e.peak == pytest.approx(((cell[1] + 0.5) / 8, (cell[0] + 0.5) / 8), abs=0.01)
        assert e.score == pytest.approx(1.0, abs=1e-5) and e.windows == 64


def test_stopping_returns_no_map_and_progress_counts_every_copy():
    emb = CellEmbedder((1, 1))
    img = Image.new("RGB", (32, 32), (10, 200, 10))
    q = emb.embed_images([img])[0]
    seen = []
    gen = explain(emb, img, q, coarse_stride=1, batch_size=8)
    result = None
    while True:
        try:
            seen.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    # 3x3 windows centred on every cell and one cell past each edge: (8 + 2) ** 2 = 100 copies.
    assert [p.done for p in seen] == [1, *range(9, 100, 8), 101] and {p.total for p in seen} == {101}
    assert result.windows == 100
    assert result is not None
    calls = iter([False, True])
    assert run_to_end(explain(emb, img, q, batch_size=8, should_stop=lambda: next(calls))) is None


def test_input_geometry_follows_clips_centre_crop(demo):
    # The demo processor resizes the shortest edge to 64 and centre-crops 64x64: a 2:1 photo loses
    # a quarter on each side; a 1:2 photo a quarter at top and bottom.
    fx, fy = input_geometry(demo, (256, 128))
    assert fx[0] == pytest.approx(0.25, abs=0.01) and fx[0] + 64 * fx[1] == pytest.approx(0.75, abs=0.01)
    assert fy[0] == pytest.approx(0.0, abs=0.01) and fy[0] + 64 * fy[1] == pytest.approx(1.0, abs=0.01)
    fx, fy = input_geometry(demo, (100, 200))
    assert fx[0] == pytest.approx(0.0, abs=0.01) and fy[0] == pytest.approx(0.25, abs=0.01)


@pytest.mark.slow
def test_pointing_game_on_demo_scenes(demo):
    """The issue's measure, for the default plan (coarse, refined): >= 0.90 of peaks inside the named
    shape; an absent shape's map is much weaker."""
    score = pointing_game(demo, pointing_items(19, POINTING_N))
    assert score.n == POINTING_N
    assert score.hit_rate >= 0.90, f"pointing game {score.hit_rate:.3f}"
    assert score.absent_ratio <= 0.75, f"absent/present peak ratio {score.absent_ratio:.3f}"


@pytest.mark.slow
def test_backends_agree_on_the_peak(demo):
    pytest.importorskip("torch")
    twin = open_embedder(MODEL, "torch")
    for item in pointing_items(5, 3):
        img = scenes.render(item.scene)
        q = demo.embed_texts([item.present_prompt])[0]
        a = run_to_end(explain(demo, img, q))
        b = run_to_end(explain(twin, img, q))
        assert a.peak == b.peak
        assert np.abs(a.grid - b.grid).max() <= 1e-3 and a.score == pytest.approx(b.score, abs=1e-4)


def test_cli_json_shape_and_map_file(tmp_path, capsys):
    scene = next(s for s in scenes.make_scenes(3, 50) if len(s.shapes) == 2)
    photo = tmp_path / "scene.png"
    scenes.render(scene, 128).save(photo)
    before = photo.read_bytes()
    target = scene.shapes[0]
    query = _prompt(target.colour, target.kind)
    out = tmp_path / "map.png"
    code = main(
        [
            "--db",
            str(tmp_path / "lib.db"),
            "--model",
            str(MODEL),
            "--backend",
            "mlx",
            "explain",
            str(photo),
            query,
            "--json",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"query", "score", "grid", "peak"} and doc["query"] == query
    assert isinstance(doc["score"], float) and -1 <= doc["score"] <= 1
    assert len(doc["grid"]) == 8 and all(len(row) == 8 for row in doc["grid"])
    assert all(isinstance(v, float) for row in doc["grid"] for v in row)
    assert len(doc["peak"]) == 2 and all(0 <= v <= 1 for v in doc["peak"])
    grid = np.array(doc["grid"])
    r, c = np.unravel_index(int(np.argmax(grid)), grid.shape)
    assert doc["peak"] == pytest.approx([(c + 0.5) / 8, (r + 0.5) / 8], abs=0.01)
    assert photo.read_bytes() == before  # the photo is never written
    with Image.open(out) as m:
        assert m.size == (128, 128)
        assert np.abs(np.asarray(m, np.int16) - np.asarray(Image.open(photo), np.int16)).max() > 20


def test_cli_explain_errors(tmp_path, capsys):
    photo, db = tmp_path / "p.png", str(tmp_path / "lib.db")
    Image.new("RGB", (40, 40)).save(photo)
    assert main(["--db", db, "--model", str(MODEL), "explain", str(photo), "-cat"]) == 2
    assert "positive weight" in capsys.readouterr().err
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    assert main(["--db", db, "--model", str(MODEL), "explain", str(broken), "a red circle"]) == 1
    assert "broken.jpg" in capsys.readouterr().err
    assert (
        main(["--db", db, "--model", str(MODEL), "explain", str(photo), "a red circle", "--out", str(photo)])
        == 1
    )
    assert "refusing to overwrite" in capsys.readouterr().err


def test_heat_image_leaves_the_uncovered_part_alone(demo):
    img = scenes.render(scenes.make_scenes(4, 1, 2)[0], 64).resize((128, 64))
    q = demo.embed_texts(["a photo of a red circle"])[0]
    e = run_to_end(explain(demo, img, q))
    assert e.box == pytest.approx((0.25, 0.0, 0.75, 1.0), abs=0.01)
    out = np.asarray(heat_image(img, e))
    src = np.asarray(img)
    assert (out[:, :30] == src[:, :30]).all() and (out[:, 98:] == src[:, 98:]).all()


@pytest.mark.slow
def test_an_8_bit_quantized_model_points_at_the_same_cells(tmp_path, demo):
    from converters.convert import convert

    quantized = open_embedder(convert(MODEL, tmp_path / "q8", quantize=8).dst, "mlx")
    for item in pointing_items(11, 3):
        img = scenes.render(item.scene)
        q = demo.embed_texts([item.present_prompt])[0]
        a = run_to_end(explain(demo, img, q))
        b = run_to_end(explain(quantized, img, q))
        assert a.peak == b.peak and np.corrcoef(a.grid.ravel(), b.grid.ravel())[0, 1] >= 0.95


class _Clock:
    """A fake `time` for app.core.explain: the fake embedder advances it by what a batch would cost."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("per_call", "per_copy", "expect_batched"),
    [(0.0, 1.0, False), (10.0, 1.0, True)],  # batches dearer per copy (tiny model on MLX CPU) / cheaper
)
def test_unset_batch_size_keeps_batching_only_where_it_is_cheaper_per_copy(
    monkeypatch, per_call, per_copy, expect_batched
):
    import app.core.explain as ex

    clock = _Clock()
    monkeypatch.setattr(ex, "time", clock)
    emb = CellEmbedder((1, 1))
    sizes: list[int] = []
    inner = emb.embed_pixels

    def embed(pixels):
        n = len(pixels)
        sizes.append(n)
        # A batch costs twice per copy, plus the fixed cost of a call.
        clock.now += per_call + per_copy * n * (1 if n == 1 else 2)
        return inner(pixels)

    emb.embed_pixels = embed
    img = Image.new("RGB", (32, 32), (10, 200, 10))
    q = inner(emb.preprocess(img)[None])[0]
    fixed = run_to_end(explain(emb, img, q, coarse_stride=1, batch_size=1))
    sizes.clear()
    auto = run_to_end(explain(emb, img, q, coarse_stride=1))
    assert sizes[:2] == [1, ex.AUTO_BATCH]  # the unoccluded embedding, then the trial batch
    later = set(sizes[2:-1])  # the last batch holds what is left
    assert later == ({ex.AUTO_BATCH} if expect_batched else {1})
    assert auto.batch == (ex.AUTO_BATCH if expect_batched else 1) and fixed.batch == 1
    assert sum(sizes) == 1 + auto.windows == 101
    np.testing.assert_allclose(auto.grid, fixed.grid, atol=1e-6)  # batching changes the speed, not the map


def test_coarse_then_refine_matches_the_full_plan_around_the_peak_with_fewer_copies():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8))
    for cell in [(3, 4), (0, 0), (7, 2)]:
        emb = CellEmbedder(cell)
        q = emb.embed_images([img])[0]
        full = run_to_end(explain(emb, img, q, coarse_stride=1, batch_size=8))
        fast = run_to_end(explain(emb, img, q, coarse_stride=2, batch_size=8))
        assert fast.peak == full.peak and fast.windows < 0.7 * full.windows
        # Every window covering the peak cell was embedded: the same value as in the full plan, and
        # the grid's maximum (the JSON's peak is the strongest cell).
        assert fast.grid[cell] == pytest.approx(full.grid[cell], abs=1e-6) == full.peak_value
        assert fast.peak_value == fast.grid[cell]
    with pytest.raises(UsageError, match="coarse_stride"):
        run_to_end(explain(CellEmbedder((0, 0)), img, q, window=1, coarse_stride=2))
