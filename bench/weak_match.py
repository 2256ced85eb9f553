"""Weak-match benchmark: how often the rule flags queries whose answer is absent, and real matches.

    python -m bench.weak_match [--model FOLDER] [--seeds 2024 7 99 ...] [--quick] [--per-draw]

On generated scene draws the calibration never saw (training/weak_match.py uses seeds 101-108), with
the generator's truth: colour+shape text queries whose class the library holds (present) or lacks
(absent), out-of-vocabulary text ("a dog": nothing to find), and single-shape query images whose
class some library scene holds alone (present), holds only among other shapes (partial, reported,
no target) or lacks (absent). Targets: >= 0.95 of absent or unknown queries flagged, <= 0.05 of
present ones. They are rates over queries, so they are read on each library kind's draws pooled (a
draw holds only 14 absent text queries: one miss in a draw is 0.071), with a 95% Wilson interval;
the worst single draw is printed too. The library kinds vary what the calibration held fixed (size,
render size, how many classes are missing), and the verdict is the worst kind's. The baseline in the
same run is the single cosine threshold used before (weak_cosine). Prints per kind, pooled, the
worst draw, and the curve as each cut moves (first kind).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path

import mlx_models  # noqa: F401  (prepares the BLAS/MLX runtime before numpy work)

import numpy as np

from app.core.backends import open_embedder
from app.core.backends.ids import search_hints
from app.core.paths import demo_model_dir
from app.core.vocabulary import model_vocabulary
from app.core.weak_match import WeakMatchCalibration, WeakMatchRule, calibration_for
from training.weak_match import CALIBRATION_SEEDS, QueryOutcome, measure_draw

HELD_OUT_SEEDS = (2024, 7, 99, 555, 31337, 11, 222, 3333, 44444, 5555)
TARGET_FLAGGED, TARGET_PRESENT = 0.95, 0.05
KINDS = ("present", "absent", "oov", "image-present", "image-partial", "image-absent")


@dataclass(frozen=True)
class LibraryKind:
    """One kind of library the draws are made of: what the calibration draws (300 scenes rendered at
    256 px, 14 of the 56 classes missing) held fixed, varied one at a time."""

    name: str
    n: int = 300
    render: int = 256
    n_absent: int = 14


LIBRARY_KINDS = (
    LibraryKind("as calibrated"),
    LibraryKind("small (120)", n=120),
    LibraryKind("large (900)", n=900),
    LibraryKind("render 96 px", render=96),
    LibraryKind("28 missing", n_absent=28),
)


def for_library(cal: WeakMatchCalibration, n: int) -> WeakMatchCalibration:
    """The rules as the search engine applies them to a library of n images."""
    return WeakMatchCalibration(cal.rule("text", n), cal.rule("image", n))


def hits_read(cal: WeakMatchCalibration) -> dict[str, int]:
    """How many top hits each support reads under these rules (measure_draw's `hits`)."""
    return {"text": cal.text.support_hits, "image": cal.image.support_hits, "label": cal.image.label_hits}


def flag_rates(outcomes: list[QueryOutcome], cal: WeakMatchCalibration, vocab) -> dict[str, float]:
    """Share of each kind flagged; "oov" with the vocabulary check, "oov-rule" by the score rule alone."""
    return rates_of(flag_counts(outcomes, cal, vocab))


def rates_of(counts: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {k: f / n if n else float("nan") for k, (f, n) in counts.items()}


def flag_counts(outcomes: list[QueryOutcome], cal: WeakMatchCalibration, vocab) -> dict[str, tuple[int, int]]:
    """(flagged, queries) per kind, as flag_rates reads them."""
    out: dict[str, tuple[int, int]] = {}
    for kind in KINDS:
        rows = [o for o in outcomes if o.kind == kind]
        rule = cal.rule("image" if kind.startswith("image") else "text")
        stat = [bool(rule.weak(o.top, o.lift, o.support, o.label_support)) for o in rows]
        if kind == "oov":
            out["oov-rule"] = (sum(stat), len(stat))
            stat = [s or bool(vocab.unknown_words([o.query])) for s, o in zip(stat, rows, strict=True)]
        out[kind] = (sum(stat), len(stat))
    return out


def wilson(flagged: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a flag rate."""
    if n == 0:
        return float("nan"), float("nan")
    p = flagged / n
    mid, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (mid - half) / (1 + z * z / n), (mid + half) / (1 + z * z / n)


def baseline(hints: dict[str, float]) -> WeakMatchCalibration:
    """The old single-threshold rule (weak below the folder's weak_cosine) in the new rule's form."""
    return WeakMatchCalibration(
        WeakMatchRule(hints.get("text", 0.2), -np.inf), WeakMatchRule(hints.get("image", 0.6), -np.inf)
    )


def fmt(r: dict[str, float]) -> str:
    keys = ("present", "absent", "oov", "oov-rule", "image-present", "image-absent", "image-partial")
    return "  ".join(f"{k} {r[k]:.3f}" if k in r else f"{k}   -  " for k in keys)


def verdict(r: dict[str, float]) -> tuple[bool, bool]:
    """(text met, image met) for a set of rates."""
    text = r["present"] <= TARGET_PRESENT and min(r["absent"], r["oov"]) >= TARGET_FLAGGED
    image = r["image-present"] <= TARGET_PRESENT and r["image-absent"] >= TARGET_FLAGGED
    return text, image


def worst_draw(rates: dict[int, dict[str, float]]) -> dict[str, float]:
    """Per kind, the worst draw: most present flagged, fewest absent/unknown flagged (partial: no target)."""
    kinds = [k for k in next(iter(rates.values())) if k != "image-partial"]
    pick = {k: max if k in ("present", "image-present") else min for k in kinds}
    return {k: pick[k](r[k] for r in rates.values()) for k in kinds}


def print_curve(everything: list[QueryOutcome], cal: WeakMatchCalibration, vocab) -> None:
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=demo_model_dir())
    p.add_argument("--seeds", type=int, nargs="+", default=list(HELD_OUT_SEEDS))
    p.add_argument("--quick", action="store_true", help="the calibrated kind of library only, 5 seeds")
    p.add_argument("--per-draw", action="store_true", help="print every draw's rates")
    a = p.parse_args(argv)
    if set(a.seeds) & set(CALIBRATION_SEEDS):
        p.error(f"seeds {sorted(set(a.seeds) & set(CALIBRATION_SEEDS))} were used for calibration")
    cal = calibration_for(a.model)
    if cal is None:
        p.error(f"{a.model} has no weak_match calibration (python -m training.weak_match {a.model})")
    seeds = a.seeds[:5] if a.quick else a.seeds
    library_kinds = LIBRARY_KINDS[:1] if a.quick else LIBRARY_KINDS
    emb = open_embedder(a.model, "mlx")
    vocab = model_vocabulary(a.model)
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (flag rates do not depend on it)")
    print(f"model {emb.model_id}; rule {cal.to_json()}")
    print(f"seeds {' '.join(map(str, seeds))}")
    print(
        "flag rates: share of each query kind flagged weak (oov: with the vocabulary check; oov-rule: without)"
    )
    pooled: dict[str, dict[str, float]] = {}  # per library kind, the rule's pooled rates
    for lk in library_kinds:
        scaled = for_library(cal, lk.n)
        rules = {"rule": scaled, "baseline": baseline(search_hints(a.model))}
        draws = {
            s: measure_draw(emb, s, lk.n, render_size=lk.render, n_absent=lk.n_absent, hits=hits_read(scaled))
            for s in seeds
        }
        everything = [o for d in draws.values() for o in d]
        rates = {name: {s: flag_rates(o, r, vocab) for s, o in draws.items()} for name, r in rules.items()}
        counts = flag_counts(everything, scaled, vocab)
        pooled[lk.name] = rates_of(counts)
        print(f"== {lk.name}: {lk.n} scenes rendered at {lk.render} px, {lk.n_absent} classes missing")
        if a.per_draw:
            for s in seeds:
                for name in rules:
                    print(f"draw {s:>6} {name:<9} {fmt(rates[name][s])}")
        print(f"pooled       {'rule':<9} {fmt(pooled[lk.name])}")
        print(f"pooled       {'baseline':<9} {fmt(flag_rates(everything, rules['baseline'], vocab))}")
        print(
            "rule, 95% intervals: "
            + "  ".join(
                f"{k} {f}/{n} [{wilson(f, n)[0]:.3f}, {wilson(f, n)[1]:.3f}]" for k, (f, n) in counts.items()
            )
        )
        print(f"worst draw   rule      {fmt(worst_draw(rates['rule']))}")
        text_ok, image_ok = verdict(pooled[lk.name])
        print(
            f"targets on the pooled draws: text {'met' if text_ok else 'NOT met'}, image {'met' if image_ok else 'NOT met'}"
        )
        if lk is library_kinds[0]:
            first = (everything, scaled)
    # Per query kind, the library kind where the rule does worst: most present, fewest absent flagged.
    worst_kind = {
        k: (max if k in ("present", "image-present") else min)(
            ((r[k], name) for name, r in pooled.items()), key=lambda vn: vn[0]
        )
        for k in next(iter(pooled.values()))
        if k != "image-partial"
    }
    worst = {k: v for k, (v, _) in worst_kind.items()}
    print(
        "WORST library kind, pooled: " + "  ".join(f"{k} {v:.3f} ({n})" for k, (v, n) in worst_kind.items())
    )
    text_ok, image_ok = verdict(worst)
    print(
        f"targets (absent/unknown >= {TARGET_FLAGGED}, present <= {TARGET_PRESENT}, pooled, worst library kind): "
        f"text {'met' if text_ok else 'NOT met'}, image {'met' if image_ok else 'NOT met'}"
    )
    print_curve(first[0], first[1], vocab)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
