"""The pointing game for explanation maps on demo scenes: does the map's peak fall inside the named shape?

Shared by tests/test_explain.py and bench/explain.py so both report the same figure on the same scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.scenes import COLOURS, SHAPES, Scene, Shape, class_prompts, make_scenes, render


@dataclass(frozen=True)
class PointingItem:
    scene: Scene
    target: Shape  # shares neither colour nor kind with the other shapes: the query names one region
    absent: tuple[str, str]  # a (colour, shape) pair whose colour and kind are both missing from the scene

    @property
    def present_prompt(self) -> str:
        return class_prompts()[(self.target.colour, self.target.kind)]

    @property
    def absent_prompt(self) -> str:
        return class_prompts()[self.absent]


@dataclass(frozen=True)
class PointingScore:
    hit_rate: float  # share of maps whose peak lies inside the named shape (within its radius of its centre)
    absent_ratio: float  # mean peak value for absent shapes / mean peak value for present ones
    n: int


def pointing_items(seed: int, n: int) -> list[PointingItem]:
    """`n` scenes of two or three shapes, each with a uniquely named shape and an absent one."""
    rng = np.random.default_rng(seed)
    items: list[PointingItem] = []
    for s in make_scenes(seed, 40 * n):
        alone = [
            t
            for t in s.shapes
            if not any(o.colour == t.colour or o.kind == t.kind for o in s.shapes if o is not t)
        ]
        if len(s.shapes) < 2 or not alone:
            continue
        colours = [c for c in COLOURS if all(o.colour != c for o in s.shapes)]
        kinds = [k for k in SHAPES if all(o.kind != k for o in s.shapes)]
        target = alone[int(rng.integers(len(alone)))]
        items.append(PointingItem(s, target, (str(rng.choice(colours)), str(rng.choice(kinds)))))
        if len(items) == n:
            break
    return items


def pointing_game(embedder, items: list[PointingItem], **explain_options) -> PointingScore:
    """Explain every item's present and absent prompt with `app.core.explain.explain` and score the peaks."""
    from app.core.explain import explain, run_to_end

    hits, present, absent = [], [], []
    for it in items:
        img = render(it.scene)
        q = embedder.embed_texts([it.present_prompt, it.absent_prompt])
        e = run_to_end(explain(embedder, img, q[0], **explain_options))
        a = run_to_end(explain(embedder, img, q[1], **explain_options))
        t = it.target
        hits.append(bool(np.hypot(e.peak[0] - t.cx, e.peak[1] - t.cy) <= t.radius))
        present.append(e.peak_value)
        absent.append(a.peak_value)
    return PointingScore(float(np.mean(hits)), float(np.mean(absent) / np.mean(present)), len(items))
