"""Weak-match benchmark: how often the rule flags queries whose answer is absent, and real matches.

    python -m bench.weak_match [--model FOLDER] [--seeds 2024 7 99 ...]

On generated scene draws the calibration never saw (training/weak_match.py uses seeds 101-108), with
the generator's truth: colour+shape text queries whose class the library holds (present) or lacks
(absent), out-of-vocabulary text ("a dog": nothing to find), and single-shape query images whose
class some library scene holds alone (present), holds only among other shapes (partial, reported,
no target) or lacks (absent). Targets: >= 0.95 of absent or unknown queries flagged, <= 0.05 of
present ones, on every draw (the worst draw is printed). The baseline in the same run is the single
cosine threshold used before (weak_cosine); `rule-v1` is the previous calibration's two cuts (score
and lift) without the label-support test. Prints per draw, pooled, the worst draw, and the curve as
each cut moves.
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
# The demo model's calibration before the label-support test (score and lift only, commit 5a94039).
DEMO_RULE_V1 = WeakMatchCalibration(WeakMatchRule(0.689, 0.1096), WeakMatchRule(0.7949, 0.1784))
TARGET_FLAGGED, TARGET_PRESENT = 0.95, 0.05
KINDS = ("present", "absent", "oov", "image-present", "image-partial", "image-absent")


def flag_rates(outcomes: list[QueryOutcome], cal: WeakMatchCalibration, vocab) -> dict[str, float]:
    """Share of each kind flagged; "oov" with the vocabulary check, "oov-rule" by the score rule alone."""
    out: dict[str, float] = {}
    for kind in KINDS:
        rows = [o for o in outcomes if o.kind == kind]
        rule = cal.rule("image" if kind.startswith("image") else "text")
        stat = [bool(rule.weak(o.top, o.lift, o.support, o.label_support)) for o in rows]
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
    rules = {"rule": cal, "baseline": baseline(search_hints(a.model))}
    if a.model.resolve() == demo_model_dir().resolve():
        rules["rule-v1"] = DEMO_RULE_V1
    rates = {name: {seed: flag_rates(o, r, vocab) for seed, o in draws.items()} for name, r in rules.items()}
    for seed in a.seeds:
        for name in rules:
            print(f"draw {seed:>6} {name:<9} {fmt(rates[name][seed])}")
    everything = [o for o in draws.values() for o in o]
    for name, r in rules.items():
        print(f"pooled       {name:<9} {fmt(flag_rates(everything, r, vocab))}")
    # Worst draw per kind: most present flagged, fewest absent/unknown flagged (partial: no target).
    kinds = [k for k in rates["rule"][a.seeds[0]] if k != "image-partial"]
    pick = {k: max if k in ("present", "image-present") else min for k in kinds}
    for name in rules:
        w = {k: pick[k](r[k] for r in rates[name].values()) for k in kinds}
        print(f"worst draw   {name:<9} {fmt(w)}")
    worst = {k: pick[k](r[k] for r in rates["rule"].values()) for k in kinds}
    text_ok = worst["present"] <= TARGET_PRESENT and min(worst["absent"], worst["oov"]) >= TARGET_FLAGGED
    image_ok = worst["image-present"] <= TARGET_PRESENT and worst["image-absent"] >= TARGET_FLAGGED
    print(
        f"targets (absent/unknown >= {TARGET_FLAGGED}, present <= {TARGET_PRESENT}, worst draw): "
        f"text {'met' if text_ok else 'NOT met'}, image {'met' if image_ok else 'NOT met'}"
    )
    for kind, field in (
        ("text", "min_top"),
        ("text", "min_lift"),
        ("text", "min_support"),
        ("image", "min_top"),
        ("image", "min_lift"),
        ("image", "min_support"),
    ):
        base = cal.rule(kind)
        if getattr(base, field) is None:
            continue
        print(f"curve: {kind} {field} (other cuts fixed), pooled draws")
        step = 0.2 if field == "min_support" else 0.02  # support counts hits; the others are cosines
        for delta in (-3 * step, -2 * step, -step, 0.0, step, 2 * step, 3 * step):
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
