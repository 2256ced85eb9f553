"""The captioned scene generator: deterministic from a seed, and its captions tell the truth."""

from __future__ import annotations

import numpy as np
import pytest

from training.scenes import (
    COLOURS,
    SHAPES,
    Scene,
    Shape,
    captions,
    class_prompts,
    make_scenes,
    render,
    sample_scene,
    truths,
    vocabulary_corpus,
)


def test_same_seed_gives_the_same_scenes_and_pixels():
    a, b = make_scenes(7, 20), make_scenes(7, 20)
    assert a == b
    assert all(
        np.array_equal(np.asarray(render(x)), np.asarray(render(y))) for x, y in zip(a, b, strict=True)
    )
    assert make_scenes(8, 20) != a


def test_scenes_hold_one_to_three_shapes_and_cover_every_class():
    scenes = make_scenes(0, 1500)
    assert {len(s.shapes) for s in scenes} == {1, 2, 3}
    seen = {(sh.colour, sh.kind) for s in scenes for sh in s.shapes}
    assert seen == set(class_prompts())
    assert make_scenes(0, 5, n_shapes=2)[0].shapes.__len__() == 2


@pytest.mark.parametrize("size", [48, 64, 160])
def test_render_size_and_mode(size):
    img = render(make_scenes(1, 1)[0], size)
    assert img.size == (size, size) and img.mode == "RGB"


def test_filled_shapes_show_their_colour_at_the_centre():
    scenes = [
        s for s in make_scenes(3, 300, n_shapes=1) if s.shapes[0].kind in ("circle", "square", "diamond")
    ]
    for scene in scenes[:20]:
        s = scene.shapes[0]
        px = np.asarray(render(scene, 128), np.float32)[int(s.cy * 128), int(s.cx * 128)]
        # Noise is at most a few units of std; the palette colours are far apart.
        assert np.abs(px - np.array(COLOURS[s.colour])).max() < 40, (s, px)


def test_captions_name_every_object_and_only_them():
    for scene in make_scenes(4, 200):
        caps = captions(scene)
        assert len(caps) >= 4
        full = caps[0]
        for sh in scene.shapes:
            assert sh.colour in full and sh.kind in full
        named_colours = {c for c in COLOURS if f" {c} " in f" {full} "}
        assert named_colours == {sh.colour for sh in scene.shapes}


def test_counting_and_articles():
    circle = Shape("circle", "red", "small", 0.3, 0.3, 0.1, 0.0)
    twin = Shape("circle", "red", "small", 0.7, 0.3, 0.1, 0.0)
    square = Shape("square", "orange", "medium", 0.5, 0.8, 0.15, 0.0)
    scene = Scene((circle, twin, square), "striped", ((200, 200, 200), (150, 150, 150)), 0.0, 1)
    caps = captions(scene)
    assert caps[0] == "two red circles and an orange square"
    assert "two red circles above an orange square" in caps
    assert "two red circles above an orange square on a striped background" in caps


def test_relations_follow_the_geometry():
    left = Shape("star", "blue", "small", 0.2, 0.5, 0.1, 0.0)
    right = Shape("cross", "green", "small", 0.8, 0.55, 0.1, 0.0)
    caps = captions(Scene((left, right), "plain", ((200, 200, 200),) * 2, 0.0, 1))
    assert "a blue star left of a green cross" in caps and "a blue star beside a green cross" in caps
    caps = captions(Scene((right, left), "plain", ((200, 200, 200),) * 2, 0.0, 1))
    assert "a green cross right of a blue star" in caps


def test_single_shape_captions_give_size_and_place():
    s = Shape("triangle", "yellow", "large", 0.2, 0.5, 0.22, 0.0)
    caps = captions(Scene((s,), "dotted", ((200, 200, 200),) * 2, 0.0, 1))
    assert "a large yellow triangle" in caps and "a yellow triangle on the left" in caps


def test_class_prompts_and_corpus_cover_the_vocabulary():
    prompts = class_prompts()
    assert len(prompts) == len(COLOURS) * len(SHAPES)
    assert prompts[("orange", "ring")] == "a photo of an orange ring"
    words = set(" ".join(vocabulary_corpus()).split())
    assert set(COLOURS) | set(SHAPES) <= words


def test_empty_grounds_span_dark_to_light_and_are_called_backgrounds():
    rng = np.random.default_rng(11)
    empty = [sample_scene(rng, 0) for _ in range(200)]
    assert all(not s.shapes for s in empty)
    tones = [t[0] for s in empty for t in s.ground]
    assert min(tones) < 30 and max(tones) > 225  # an all-black or all-white frame is a ground too
    assert max(s.noise for s in empty) > 30
    for s in empty[:20]:
        caps = captions(s)
        assert all(c.endswith(f"{s.background} background") for c in caps)
        assert not set(caps[0].split()) & (set(COLOURS) | set(SHAPES))
        px = np.asarray(render(s, 32), np.int16)
        assert px.shape == (32, 32, 3)


def test_truths_hold_own_captions_and_a_partial_for_each_object_only():
    for scene in make_scenes(5, 100):
        t = truths(scene)
        assert set(captions(scene)) <= t
        partial = {c for c in t if c.startswith("a scene with ")}
        named = {c.removeprefix("a scene with ") for c in partial}
        for phrase in named:  # "a red circle" or "two red circles": each names one of the scene's groups
            assert any(sh.colour in phrase and sh.kind in phrase for sh in scene.shapes)
        assert len(partial) == len({(sh.colour, sh.kind) for sh in scene.shapes})
