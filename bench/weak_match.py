"""Weak-match benchmark: how often the rule flags queries whose answer is absent, and real matches.

    python -m bench.weak_match [--model FOLDER] [--seeds 2024 7 99 ...]

On generated scene draws the calibration never saw (training/weak_match.py uses seeds 101-104), with
the generator's truth: colour+shape text queries whose class the library holds (present) or lacks
(absent), out-of-vocabulary text ("a dog": nothing to find), and single-shape query images whose
class some library scene holds alone (present), holds only among other shapes (partial, reported,
no target) or lacks (absent). Targets: >= 0.95 of absent or unknown queries flagged, <= 0.05 of
present ones. The baseline in the same run is the single cosine threshold used before (weak_cosine).
Prints per draw, the worst draw, and the curve as each cut moves.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import mlx_models  # noqa: F401  (prepares the BLAS/MLX runtime before numpy work)

import numpy as np

from app.core.backends import open_embedder
from app.core.backends.ids import search_hints
from app.core.paths import demo_model_dir
from app.core.vocabulary import model_vocabulary
from app.core.weak_match import WeakMatchCalibration, WeakMatchRule, calibration_for
from training.weak_match import CALIBRATION_SEEDS, QueryOutcome, measure_draw

HELD_OUT_SEEDS = (2024, 7, 99, 555, 31337)
TARGET_FLAGGED, TARGET_PRESENT = 0.95, 0.05
KINDS = ("present", "absent", "oov", "image-present", "image-partial", "image-absent")


def flag_rates(outcomes: list[QueryOutcome], cal: WeakMatchCalibration, vocab) -> dict[str, float]:
    """Share of each kind flagged; "oov" with the vocabulary check, "oov-rule" by the score rule alone."""
    out: dict[str, float] = {}
    for kind in KINDS:
        rows = [o for o in outcomes if o.kind == kind]
        rule = cal.rule("image" if kind.startswith("image") else "text")
        stat = [bool(rule.weak(o.top, o.lift)) for o in rows]
        if kind == "oov":
            out["oov-rule"] = float(np.mean(stat))
            stat = [s or bool(vocab.unknown_words([o.query])) for s, o in zip(stat, rows, strict=True)]
        out[kind] = float(np.mean(stat)) if rows else float("nan")
    return out


def baseline(hints: dict[str, float]) -> WeakMatchCalibration:
    """The old single-threshold rule (weak below the folder's weak_cosine) in the new rule's form."""
    return WeakMatchCalibration(
        WeakMatchRule(hints.get("text", 0.2), -np.inf), WeakMatchRule(hints.get("image", 0.6), -np.inf)
    )


def fmt(r: dict[str, float]) -> str:
    keys = ("present", "absent", "oov", "oov-rule", "image-present", "image-absent", "image-partial")
    return "  ".join(f"{k} {r[k]:.3f}" if k in r else f"{k}   -  " for k in keys)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=demo_model_dir())
    p.add_argument("--seeds", type=int, nargs="+", default=list(HELD_OUT_SEEDS))
    a = p.parse_args(argv)
    if set(a.seeds) & set(CALIBRATION_SEEDS):
        p.error(f"seeds {sorted(set(a.seeds) & set(CALIBRATION_SEEDS))} were used for calibration")
    cal = calibration_for(a.model)
    if cal is None:
        p.error(f"{a.model} has no weak_match calibration (python -m training.weak_match {a.model})")
    emb = open_embedder(a.model, "mlx")
    vocab = model_vocabulary(a.model)
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (a shared machine)")
    print(f"model {emb.model_id}; rule {cal.to_json()}")
    print(
        "flag rates: share of each query kind flagged weak (oov: with the vocabulary check; oov-rule: without)"
    )
    draws = {seed: measure_draw(emb, seed) for seed in a.seeds}
    rates = {seed: flag_rates(o, cal, vocab) for seed, o in draws.items()}
    old = {seed: flag_rates(o, baseline(search_hints(a.model)), vocab) for seed, o in draws.items()}
    for seed in a.seeds:
        print(f"draw {seed:>6} rule      {fmt(rates[seed])}")
        print(f"draw {seed:>6} baseline  {fmt(old[seed])}")
    # Worst draw per kind: most present flagged, fewest absent/unknown flagged (partial: no target).
    kinds = [k for k in rates[a.seeds[0]] if k != "image-partial"]
    pick = {k: max if k in ("present", "image-present") else min for k in kinds}
    worst = {k: pick[k](r[k] for r in rates.values()) for k in kinds}
    print(f"worst draw   rule      {fmt(worst)}")
    text_ok = worst["present"] <= TARGET_PRESENT and min(worst["absent"], worst["oov"]) >= TARGET_FLAGGED
    image_ok = worst["image-present"] <= TARGET_PRESENT and worst["image-absent"] >= TARGET_FLAGGED
    print(
        f"targets (absent/unknown >= {TARGET_FLAGGED}, present <= {TARGET_PRESENT}, worst draw): "
        f"text {'met' if text_ok else 'NOT met'}, image {'met' if image_ok else 'NOT met'}"
    )
    everything = [o for o in draws.values() for o in o]
    for kind, field in (
        ("text", "min_top"),
        ("text", "min_lift"),
        ("image", "min_top"),
        ("image", "min_lift"),
    ):
        base = cal.rule(kind)
        print(f"curve: {kind} {field} (other cut fixed), pooled draws")
        for delta in (-0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06):
            rule = replace(base, **{field: getattr(base, field) + delta})
            moved = (
                WeakMatchCalibration(rule, cal.image)
                if kind == "text"
                else WeakMatchCalibration(cal.text, rule)
            )
            r = flag_rates(everything, moved, vocab)
            if kind == "text":
                print(
                    f"  {field} {getattr(rule, field):.3f}: present {r['present']:.3f}  absent {r['absent']:.3f}  oov-rule {r['oov-rule']:.3f}"
                )
            else:
                print(
                    f"  {field} {getattr(rule, field):.3f}: present {r['image-present']:.3f}  absent {r['image-absent']:.3f}  partial {r['image-partial']:.3f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
