"""The SEA vs baseline comparison: headline metric per benchmark, per seed and arm; mean, sample std and
relative gain, with intervals and degenerate-answer flags; diagnostics and label quality. Pure functions
(no tracking, no folder layout); `sea.stages.report` reads the runs and writes the report.

Headline metric per benchmark (what LLaVA-1.5's MODEL_ZOO and the SEA paper's Table 2 report; rates in
percent, MME in points):

| benchmark | metric | note |
|---|---|---|
| gqa | `accuracy` | exact match (testdev-balanced) |
| pope | `f1` | F1 averaged over the splits (random / popular / adversarial) |
| mme | `perception` | perception score (sum of the subtask scores, max 2000) |
| mmbench, mmbench_cn | `accuracy` | circular accuracy |
| sqa | `img_accuracy` | ScienceQA-IMG |
| textvqa, vqav2 | `accuracy` | VQA soft accuracy |
| seed | `accuracy` | all questions (MODEL_ZOO's "SEED") |

POPE: the mean of the per-split F1s (what the scorer's `metrics.f1` holds). LLaVA's `eval_pope.py` prints
F1 and accuracy per split and MODEL_ZOO does not say which aggregate it reports; the SEA paper's and
LLaVA-1.5's POPE numbers are read as averaged F1 here. The accuracy average is in the all-metrics table.

Any other benchmark falls back to its first metric (in file order; `evaluate` writes them sorted), named
in the table. A benchmark is matched by its key in `scores.json` or by the scorer name in its result.

Relative gain of an arm over the baseline, in percent, on the means over seeds:
`(mean_arm - mean_baseline) / mean_baseline * 100` (undefined when the baseline mean is 0). Every arm of
`arms` but `baseline` is compared with `baseline`, pairing the runs trained from the same seed.

The summary is the paper's average relative gain (the mean over benchmarks of the per-benchmark gains),
computed only over the benchmarks that no degenerate-answer flag marks for either arm of the pair (and
whose gain is defined); the ones left out are named with the reason. It comes with a paired bootstrap
interval over questions (jointly over the benchmarks) and, with >= 3 seeds, a t interval over seeds, a
plain verdict ("no significant difference at this scale" when an interval contains 0), and whether the
benchmarks it covers are the SEA paper's Table 2 set (`PAPER_BENCHMARKS`), so that it is never set beside
the paper's +7.61 % on another basis. Intervals and flags: `sea.eval.stats`; rendering: `sea.eval.render`;
reading the run folders and writing the report: `sea.stages.report`.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sea.eval import stats
from sea.eval.report import flat_metrics, metric_name
from sea.eval.stats import finite

log = logging.getLogger(__name__)

BASELINE = "baseline"

# benchmark (scorer) -> (headline metric, description)
HEADLINES: dict[str, tuple[str, str]] = {
    "vqav2": ("accuracy", "accuracy"),
    "textvqa": ("accuracy", "accuracy"),
    "gqa": ("accuracy", "accuracy"),
    "sqa": ("img_accuracy", "IMG accuracy"),
    "mmbench": ("accuracy", "circular accuracy"),
    "mmbench_cn": ("accuracy", "circular accuracy"),
    "pope": ("f1", "F1, mean of the splits"),
    "mme": ("perception", "perception score"),
    "seed": ("accuracy", "accuracy (all)"),
}
DISPLAY = {
    "vqav2": "VQAv2",
    "textvqa": "TextVQA",
    "gqa": "GQA",
    "sqa": "ScienceQA-IMG",
    "scienceqa": "ScienceQA-IMG",
    "mmbench": "MMBench",
    "mmbench_cn": "MMBench-CN",
    "pope": "POPE",
    "mme": "MME",
    "seed": "SEED",
    "vizwiz": "VizWiz",
    "mmvet": "MM-Vet",
}
# The SEA paper's Table 2 benchmarks (its average relative gain, +7.61 % for Gemma-2B, is over these).
PAPER_BENCHMARKS = ("vqav2", "textvqa", "gqa", "sqa", "mmbench", "pope", "vizwiz", "mmvet")
CANONICAL = {"scienceqa": "sqa", "mm-vet": "mmvet", "mm_vet": "mmvet", "vqa": "vqav2"}
# Table order: the paper's columns first, then LLaVA-1.5's other benchmarks; unknown ones after, by name.
ORDER = (
    "vqav2", "textvqa", "gqa", "sqa", "scienceqa", "mmbench", "mmbench_cn", "pope", "vizwiz", "mmvet", "mme",
    "seed",
)  # fmt: skip


def read_label_metrics(path: str | Path) -> dict[str, float] | None:
    """The label stage's metrics (`<paths.metrics>/label.json`), or None when absent."""
    path = Path(path)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if finite(v) is not None}


# ---- statistics ------------------------------------------------------------------------------------


def headline(name: str, result: Mapping[str, Any]) -> tuple[str, str, float | None]:
    """(metric key, description, value) of a benchmark result's headline metric (see the module doc)."""
    metrics = result.get("metrics") or {}
    known = HEADLINES.get(name) or HEADLINES.get(str(result.get("benchmark", "")))
    if name == "scienceqa":
        known = HEADLINES["sqa"]
    if known is not None and known[0] == "f1" and result.get("splits"):
        f1s = [s.get("f1") for s in result["splits"].values()]
        if f1s and all(finite(v) is not None for v in f1s):
            return "f1", f"F1, mean of {len(f1s)} splits", statistics.fmean(f1s)
    if known is not None and known[0] in metrics:
        return known[0], known[1], finite(metrics[known[0]])
    if not metrics:
        return "", "no metrics", None
    first = next(iter(metrics))
    return first, f"{first} (first metric)", finite(metrics[first])


def _bench_order(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    known = [n for n in ORDER if n in names]
    return known + sorted(n for n in names if n not in ORDER)


def _headline_values(
    b: str, scores: Mapping[int, Mapping[str, Mapping[str, Any]]], arms: Sequence[str], seeds: Sequence[int]
) -> tuple[str, str, dict[str, dict[str, float | None]]]:
    """(metric, description, `values[arm][seed]`) of benchmark `b`: one metric per benchmark."""
    metric, description = "", ""
    values: dict[str, dict[str, float | None]] = {}
    for a in arms:
        values[a] = {}
        for s in seeds:
            res = scores[s][a].get(b)
            if res is None:
                values[a][str(s)] = None
                continue
            key, desc, value = headline(b, res)
            if not metric:
                metric, description = key, desc
            elif key != metric:  # keep one metric per benchmark
                value = finite((res.get("metrics") or {}).get(metric))
            values[a][str(s)] = value
    return metric, description, values


def compare(
    scores: Mapping[int, Mapping[str, Mapping[str, Any]]],
    arms: Sequence[str],
    seeds: Sequence[int],
    baseline: str = BASELINE,
    outcomes: Mapping[int, Mapping[str, Mapping[str, Any]]] | None = None,
    *,
    settings: stats.Settings,
) -> dict[str, Any]:
    """The comparison table (JSON-serialisable, seeds as string keys) from `{seed: {arm: scores}}` and,
    for the intervals, `{seed: {arm: outcomes}}` (`outcomes.json`; None or missing runs: no bootstrap).

    Per benchmark: `metric`, `description`, `chance` (and `chance_rule`), `values[arm][seed]`, `mean[arm]`,
    `std[arm]` (None for one seed), `n[arm]`, `flags[arm]` (`sea.eval.stats.answer_flags` merged over
    seeds), `ci[arm]` (paired bootstrap over questions of the mean over seeds; None without outcomes),
    `seed_ci[arm]` (t interval over seeds; None below 3), `bootstrap` (unit, units, strata), and for every
    arm but the baseline `delta[arm]` (points), `gain[arm]` (percent, on the means) with `delta_ci`,
    `gain_ci`, `delta_seed_ci`, `gain_seed_ci`, and `gain_per_seed[arm][seed]`.

    `average[arm]`: the paper's average relative gain over the benchmarks flagged for neither arm of the
    pair (`gain`, `ci` jointly bootstrapped, `seed_ci`, `benchmarks`, `left_out` {benchmark: reason},
    `per_seed`, `significant`, `verdict`, `paper_basis`). `diagnostics[name]` and `metrics[name]`
    (every flat metric): `mean`, `std`, `n` per arm.
    """
    arms = list(arms)
    seeds = [int(s) for s in seeds]
    base = baseline if baseline in arms else None
    others = [a for a in arms if a != base] if base else []
    benches = _bench_order(
        b
        for s in seeds
        for a in arms
        for b in scores[s][a]
        if b != "diagnostics" and isinstance(scores[s][a][b], Mapping)
    )
    table: dict[str, Any] = {}
    boot: dict[str, dict[str, np.ndarray] | None] = {}
    for b in benches:
        metric, description, values = _headline_values(b, scores, arms, seeds)
        results = [scores[s][a][b] for s in seeds for a in arms if b in scores[s][a]]
        chance = next((r["chance"] for r in results if r.get("chance")), {})
        row: dict[str, Any] = {
            "name": DISPLAY.get(b, b),
            "metric": metric,
            "description": description,
            "chance": finite((chance.get("metrics") or {}).get(metric)),
            "chance_rule": chance.get("rule"),
            "values": values,
        }
        summary = {a: stats.mean_std(values[a].values()) for a in arms}
        row["mean"] = {a: summary[a][0] for a in arms}
        row["std"] = {a: summary[a][1] for a in arms}
        row["n"] = {a: summary[a][2] for a in arms}
        row["flags"] = {
            a: stats.merge_flags(
                {
                    str(s): stats.answer_flags(scores[s][a][b], metric, values[a][str(s)], settings)
                    for s in seeds
                    if b in scores[s][a]
                }
            )
            for a in arms
        }
        boot[b] = stats.bootstrap_row(b, row, outcomes, arms, seeds, settings)
        row["seed_ci"] = {a: stats.t_interval(list(values[a].values()), settings.confidence) for a in arms}
        if base:
            stats.pair_intervals(row, boot[b], base, others, seeds, settings)
        table[b] = row

    out: dict[str, Any] = {"arms": arms, "seeds": seeds, "baseline": base, "benchmarks": table}
    out["statistics"] = {
        "confidence": settings.confidence,
        "resamples": settings.bootstrap.resamples,
        "bootstrap_seed": settings.bootstrap.seed,
        "question_interval": "paired percentile bootstrap over units, stratified (sea.eval.stats)",
        "seed_interval": f"Student t on the per-seed values, n - 1 df, with >= {stats.MIN_SEEDS} seeds",
        "flags": {
            "yes_ratio": [settings.flags.yes_ratio_low, settings.flags.yes_ratio_high],
            "unparsed": settings.flags.unparsed,
            "chance_margin": settings.flags.chance_margin,
        },
    }
    if base:
        out["average"] = {a: stats.average_gain(table, boot, a, base, seeds, settings) for a in others}
        for avg in out["average"].values():
            avg["paper_basis"] = paper_basis(avg["benchmarks"])
    out["diagnostics"] = _summaries(
        {a: [(scores[s][a].get("diagnostics") or {}).get("metrics") or {} for s in seeds] for a in arms}
    )
    out["metrics"] = _summaries(
        {
            a: [flat_metrics({k: v for k, v in scores[s][a].items() if k != "diagnostics"}) for s in seeds]
            for a in arms
        }
    )
    return out


def paper_basis(benchmarks: Iterable[str]) -> dict[str, Any]:
    """Whether an average covers the SEA paper's Table 2 benchmarks exactly: `same`, `missing`, `extra`,
    `paper` (display names)."""
    got = {CANONICAL.get(b, b) for b in benchmarks}
    missing = [DISPLAY.get(b, b) for b in PAPER_BENCHMARKS if b not in got]
    extra = [DISPLAY.get(b, b) for b in _bench_order(got) if b not in PAPER_BENCHMARKS]
    paper = [DISPLAY.get(b, b) for b in PAPER_BENCHMARKS]
    return {"same": not missing and not extra, "missing": missing, "extra": extra, "paper": paper}


def _summaries(per_arm: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """`{name: {"mean": {arm}, "std": {arm}, "n": {arm}}}` over the per-seed metric dicts of every arm."""
    names = list(dict.fromkeys(k for rows in per_arm.values() for r in rows for k in r))
    out = {}
    for name in names:
        summary = {a: stats.mean_std(r.get(name) for r in rows) for a, rows in per_arm.items()}
        out[name] = {
            "mean": {a: m for a, (m, _, _) in summary.items()},
            "std": {a: sd for a, (_, sd, _) in summary.items()},
            "n": {a: n for a, (_, _, n) in summary.items()},
        }
    return out


def flat_summary(comparison: Mapping[str, Any]) -> dict[str, float]:
    """MLflow-safe finite metrics: `gain/<benchmark>` and `gain/average` (with several compared arms
    `gain/<arm>/<benchmark>`, `gain/<arm>/average`) with `/ci_low` and `/ci_high` (bootstrap over
    questions) and `/seed_ci_low`, `/seed_ci_high` (over seeds), `gain/average/benchmarks` (how many it
    covers), `delta/[<arm>/]<benchmark>` with its bounds, `<arm>/<benchmark>/mean`, `/std`, `/ci_low`,
    `/ci_high`, `/flags` (how many kinds), `<arm>/diagnostics/<name>/mean`, and `seeds`."""
    out: dict[str, float] = {"seeds": float(len(comparison["seeds"]))}
    base = comparison.get("baseline")
    others = [a for a in comparison["arms"] if a != base] if base else []

    def put(name: str, value: Any) -> None:
        value = finite(value)
        if value is not None:
            out[name] = value

    def put_ci(name: str, interval: Sequence[float] | None, prefix: str = "") -> None:
        if interval is not None:
            put(f"{name}/{prefix}ci_low", interval[0])
            put(f"{name}/{prefix}ci_high", interval[1])

    def pair_name(kind: str, arm: str, *parts: str) -> str:
        return metric_name(kind, *parts) if len(others) == 1 else metric_name(kind, arm, *parts)

    for b, row in comparison["benchmarks"].items():
        for a in comparison["arms"]:
            put(metric_name(a, b, "mean"), row["mean"][a])
            put(metric_name(a, b, "std"), row["std"][a])
            put_ci(metric_name(a, b), row["ci"][a])
            put(metric_name(a, b, "flags"), len(row["flags"][a]))
        for a in others:
            for kind in ("gain", "delta"):
                name = pair_name(kind, a, b)
                put(name, row[kind][a])
                put_ci(name, row[f"{kind}_ci"][a])
                put_ci(name, row[f"{kind}_seed_ci"][a], "seed_")
    for a in others:
        avg = comparison["average"][a]
        name = pair_name("gain", a, "average")
        put(name, avg["gain"])
        put_ci(name, avg["ci"])
        put_ci(name, avg["seed_ci"], "seed_")
        put(f"{name}/benchmarks", len(avg["benchmarks"]))
    for name, row in comparison["diagnostics"].items():
        for a in comparison["arms"]:
            put(metric_name(a, "diagnostics", *name.split("/"), "mean"), row["mean"][a])
    return out
