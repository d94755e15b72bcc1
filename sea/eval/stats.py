"""The report's statistics: paired bootstrap intervals over questions, t-intervals over seeds, and the
flags that mark a degenerate answer distribution. Pure functions on numbers and `sea.eval.outcomes`.

**Paired bootstrap over questions.** For one benchmark, every (seed, arm) answered the same units
(`sea.eval.outcomes`: a question; for POPE a question within its split; for MME an image's question
pair within its subtask; for MMBench an original question with all its circular copies). A resample
draws units with replacement within each stratum and recomputes the headline for every (seed, arm) on
the *same* draw, so an arm and the baseline are compared on identical question sets. Per resample: an
arm's value is the mean over seeds, the difference is arm − baseline, the relative gain is
(arm − baseline) / baseline × 100, and the average relative gain is the mean of the gains of the
benchmarks it covers (every benchmark resampled independently, the same resample index across them: a
joint bootstrap). Intervals are percentile intervals. Deterministic: the draws of benchmark `b`,
stratum `i` come from `numpy.random.default_rng([seed, crc32(b), i])`, so they do not depend on which
other benchmarks or arms are present. Two identical answer files give a difference of exactly 0 in
every resample, so the interval [0, 0].

**Across seeds** (with at least `MIN_SEEDS` seeds): a Student t interval, n − 1 degrees of freedom, on
the mean of the per-seed values (an arm's headline, or the paired per-seed difference, relative gain or
average relative gain). The average's verdict is "significant" only when every interval it has (over
questions, over seeds) excludes 0 on the same side.

**Flags** per (seed, arm, benchmark), thresholds in `conf/report/default.yaml`:
- `yes_ratio`: a POPE split whose yes-ratio is above `flags.yes_ratio_high` or below `flags.yes_ratio_low`
  (percent; per split, since a split answered all-"yes" is degenerate whatever the others do);
- `unparsed`: more than `flags.unparsed` percent of the answers read by no parsing rule (POPE: no
  yes / no / not word, though the reference reads them as "yes"; MME: "other"; MMBench: no option read);
- `chance`: the headline at or below the benchmark's chance level + `flags.chance_margin`, chance
  computed by the scorer from the ground truth (its `chance`: the best answerer that ignores the image,
  see each scorer).
"""

from __future__ import annotations

import math
import statistics
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sea.errors import SeaError
from sea.eval.outcomes import headline, point_headline
from sea.utils.settings import settings_from

MIN_SEEDS = 3
CHUNK = 256  # resamples drawn per block (bounds memory on large benchmarks)


@dataclass(frozen=True)
class Bootstrap:
    resamples: int
    seed: int


@dataclass(frozen=True)
class Flags:
    yes_ratio_low: float
    yes_ratio_high: float
    unparsed: float
    chance_margin: float


@dataclass(frozen=True)
class Settings:
    """`report.*` of the config (conf/report/default.yaml explains every value)."""

    confidence: float
    bootstrap: Bootstrap
    flags: Flags

    @classmethod
    def from_config(cls, report: Mapping[str, Any] | None) -> Settings:
        """From the `report` config section; a SeaError names an unknown, missing or bad key."""
        out = settings_from(cls, report, "report")
        if not 0 < out.confidence < 1:
            raise SeaError(f"report.confidence must be between 0 and 1, got {out.confidence}")
        if out.bootstrap.resamples < 1:
            raise SeaError(f"report.bootstrap.resamples must be at least 1, got {out.bootstrap.resamples}")
        low, high = out.flags.yes_ratio_low, out.flags.yes_ratio_high
        if not 0 <= low < high <= 100:
            raise SeaError(
                f"report.flags: need 0 <= yes_ratio_low < yes_ratio_high <= 100, got {low:g} and {high:g}"
            )
        return out


def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ---- bootstrap -------------------------------------------------------------------------------------


def _aligned(benchmark: str, outcomes: Mapping[Any, Mapping[str, Any]]) -> tuple[str, list[str], list]:
    """(aggregate, strata names, [per stratum: (ids, {key: values array})]) with every run's units in the
    first run's order; a SeaError when the runs did not answer the same units."""
    keys = list(outcomes)
    ref = outcomes[keys[0]]
    names = sorted(ref["strata"])
    for k in keys[1:]:
        other = outcomes[k]
        if other["aggregate"] != ref["aggregate"] or sorted(other["strata"]) != names:
            raise SeaError(
                f"report: {benchmark} outcomes of {k} and {keys[0]} differ in aggregate or strata: "
                "not the same benchmark files"
            )
    strata = []
    for name in names:
        ids = ref["strata"][name]["ids"]
        values = {}
        for k in keys:
            stratum = outcomes[k]["strata"][name]
            if stratum["ids"] == ids:
                values[k] = np.asarray(stratum["values"], dtype=float)
                continue
            pos = {u: i for i, u in enumerate(stratum["ids"])}
            if set(pos) != set(ids):
                diff = sorted(set(pos) ^ set(ids))[:5]
                raise SeaError(
                    f"report: {benchmark} ({name}): {k} and {keys[0]} answered different units "
                    f"(e.g. {diff}): a paired comparison needs the same questions"
                )
            values[k] = np.asarray(stratum["values"], dtype=float)[[pos[u] for u in ids]]
        strata.append((ids, values))
    return ref["aggregate"], names, strata


def paired_bootstrap(
    benchmark: str, outcomes: Mapping[Any, Mapping[str, Any]], resamples: int, seed: int
) -> dict[Any, np.ndarray]:
    """`{run key: headline per resample}` (arrays of length `resamples`), every run resampled on the
    same units (see the module docstring)."""
    aggregate, _, strata = _aligned(benchmark, outcomes)
    keys = list(outcomes)
    sizes = np.array([len(ids) for ids, _ in strata])
    sums = []  # per stratum: (resamples, runs, columns)
    for i, (ids, values) in enumerate(strata):
        n = len(ids)
        stacked = np.stack([values[k] for k in keys], axis=1).reshape(n, -1)  # (units, runs * columns)
        rng = np.random.default_rng([seed, zlib.crc32(benchmark.encode()), i])
        blocks = []
        for start in range(0, resamples, CHUNK):
            c = min(CHUNK, resamples - start)
            idx = rng.integers(0, n, size=(c, n))
            counts = np.bincount((idx + n * np.arange(c)[:, None]).ravel(), minlength=c * n).reshape(c, n)
            blocks.append(counts.astype(float) @ stacked)
        sums.append(np.concatenate(blocks).reshape(resamples, len(keys), -1))
    values = headline(aggregate, np.stack(sums, axis=2), sizes)  # (resamples, runs)
    return {k: values[:, j] for j, k in enumerate(keys)}


def percentile_interval(samples: np.ndarray, confidence: float) -> list[float] | None:
    """[low, high] percentile interval; None when any sample is not finite (e.g. a gain over 0)."""
    samples = np.asarray(samples, dtype=float)
    if samples.size == 0 or not np.all(np.isfinite(samples)):
        return None
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return [float(low), float(high)]


def relative_gain_samples(arm: np.ndarray, base: np.ndarray) -> np.ndarray:
    """(arm - base) / base * 100 per resample; inf / nan where base is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (arm - base) / base * 100


# ---- across seeds ----------------------------------------------------------------------------------


def t_interval(values: Sequence[float | None], confidence: float) -> list[float] | None:
    """Student t interval for the mean of `values` (n - 1 df); None below `MIN_SEEDS` finite values."""
    from scipy.stats import t

    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if len(vals) < MIN_SEEDS:
        return None
    mean, sd = statistics.fmean(vals), statistics.stdev(vals)
    half = float(t.ppf(1 - (1 - confidence) / 2, len(vals) - 1)) * sd / math.sqrt(len(vals))
    return [mean - half, mean + half]


# ---- flags -----------------------------------------------------------------------------------------


def answer_flags(
    result: Mapping[str, Any], metric: str, value: float | None, settings: Settings
) -> list[dict]:
    """The degenerate-answer flags of one scored answer file (see the module docstring): a list of
    `{"kind", "short", "detail"}`."""
    flags = []
    splits = result.get("splits") or {"all": result.get("metrics") or {}}
    ratios = {s: m["yes_ratio"] for s, m in splits.items() if "yes_ratio" in m}
    low, high = settings.flags.yes_ratio_low, settings.flags.yes_ratio_high
    odd = {s: r for s, r in ratios.items() if not low <= r <= high}
    if odd:
        worst = max(odd.values(), key=lambda r: abs(r - 50))
        where = ", ".join(f"{s} {r:.0f} %" for s, r in odd.items())
        flags.append(
            {
                "kind": "yes_ratio",
                "short": f"yes {worst:.0f} %",
                "detail": f"yes-ratio outside [{low:g}, {high:g}] % ({where})",
            }
        )
    counts = result.get("counts") or {}
    unparsed = counts.get("unparsed", counts.get("other"))
    if unparsed is not None and counts.get("answered"):
        share = unparsed / counts["answered"] * 100
        if share > settings.flags.unparsed:
            flags.append(
                {
                    "kind": "unparsed",
                    "short": f"unparsed {share:.0f} %",
                    "detail": f"{unparsed} of {counts['answered']} answers ({share:.1f} %) unparsed, over "
                    f"{settings.flags.unparsed:g} %",
                }
            )
    chance = ((result.get("chance") or {}).get("metrics") or {}).get(metric)
    if value is not None and chance is not None and value <= chance + settings.flags.chance_margin:
        rule = (result.get("chance") or {}).get("rule", "")
        flags.append(
            {
                "kind": "chance",
                "short": "≤ chance",
                "detail": f"{value:.2f} at or below chance {chance:.2f}" + (f" ({rule})" if rule else ""),
            }
        )
    return flags


INTERVAL_NAMES = ("over questions", "over seeds")


def verdict(
    arm: str, base: str, intervals: Sequence[Sequence[float] | None], names: Sequence[str] = INTERVAL_NAMES
) -> tuple[bool, str]:
    """(significant, plain sentence) for intervals of arm − baseline (or of a relative gain): significant
    only when every interval given excludes 0 on the same side. When they disagree the sentence says which
    interval contains 0 and which does not (`names`: one per interval); a significant sentence names the
    intervals that are missing: one seed's interval over questions leaves out seed-to-seed variation,
    which can reverse it (docs/experiments/README.md, "Fifth round")."""
    named = [(n, i) for n, i in zip(names, intervals, strict=False) if i is not None]
    given = [i for _, i in named]
    if not given:
        return False, "no interval (no per-question outcomes and fewer than 3 seeds): no claim either way"
    if any(low <= 0 <= high for low, high in given) or len({low > 0 for low, _ in given}) > 1:
        across = [n for n, (low, high) in named if not low <= 0 <= high]
        within = [n for n, (low, high) in named if low <= 0 <= high]
        if not across or not within:  # all contain 0, or they exclude it on opposite sides
            return False, "no significant difference at this scale"
        return False, (
            f"no significant difference at this scale: the interval {', '.join(within)} contains 0 "
            f"(the one {', '.join(across)} does not)"
        )
    direction = "higher" if given[0][0] > 0 else "lower"
    missing = [n for n, i in zip(names, intervals, strict=False) if i is None]
    if missing:
        why = (
            " (fewer than 3 seeds): training-seed variation is not in this verdict, and another seed can "
            "reverse it"
            if missing == [INTERVAL_NAMES[1]]
            else ": what it would cover is not in this verdict"
        )
        over = ", ".join(n for n, _ in named)
        return True, f"{arm} is {direction} than {base} {over}, but no interval {', '.join(missing)}{why}"
    return True, f"{arm} is {direction} than {base} (every interval excludes 0)"


# ---- the comparison's statistics (rows of `sea.eval.compare.compare`) -------------------------------


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation (n - 1), n) of the finite values; std is None below two values,
    mean is None without any."""
    vals = [v for v in (finite(x) for x in values) if v is not None]
    if not vals:
        return None, None, 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None), len(vals)


def relative_gain(value: float | None, baseline: float | None) -> float | None:
    """`(value - baseline) / baseline * 100`; None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0:
        return None
    return (value - baseline) / baseline * 100


def merge_flags(per_seed: Mapping[str, list[dict]]) -> list[dict]:
    """One entry per flag kind over the seeds: `{"kind", "short", "seeds", "detail"}` (details per seed)."""
    out: dict[str, dict] = {}
    for s, flags in per_seed.items():
        for f in flags:
            entry = out.setdefault(
                f["kind"], {"kind": f["kind"], "short": f["short"], "seeds": [], "detail": {}}
            )
            entry["seeds"].append(int(s))
            entry["detail"][s] = f["detail"]
    return list(out.values())


def check_outcomes(b: str, runs: Mapping[tuple[int, str], Mapping], values: Mapping) -> None:
    """Each run's outcomes must give its scores.json headline (one source of truth: the scorer)."""
    for (s, a), oc in runs.items():
        expected, got = values[a][str(s)], point_headline(oc)
        if expected is None or not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9):
            raise SeaError(
                f"report: {b} of seed {s}, arm {a}: outcomes.json gives {got} but scores.json {expected}: "
                "the two files are not from the same scoring (rerun `evaluate`)"
            )


def bootstrap_row(
    b: str,
    row: dict[str, Any],
    outcomes: Mapping[int, Mapping[str, Mapping[str, Any]]] | None,
    arms: Sequence[str],
    seeds: Sequence[int],
    settings: Settings,
) -> dict[str, np.ndarray] | None:
    """Per arm, the mean over seeds of the headline per resample (None without every run's outcomes);
    fills `row["bootstrap"]` and `row["ci"]`."""
    runs = {
        (s, a): outcomes[s][a][b]
        for s in seeds
        for a in arms
        if outcomes and (outcomes.get(s, {}).get(a) or {}).get(b, {}).get("strata")
    }
    if len(runs) < len(seeds) * len(arms):
        row["bootstrap"] = None
        row["ci"] = dict.fromkeys(arms)
        return None
    check_outcomes(b, runs, row["values"])
    samples = paired_bootstrap(b, runs, settings.bootstrap.resamples, settings.bootstrap.seed)
    per_arm = {a: np.mean([samples[(s, a)] for s in seeds], axis=0) for a in arms}
    first = next(iter(runs.values()))
    row["bootstrap"] = {
        "unit": first["unit"],
        "units": sum(len(st["ids"]) for st in first["strata"].values()),
        "strata": sorted(first["strata"]),
    }
    row["ci"] = {a: percentile_interval(per_arm[a], settings.confidence) for a in arms}
    return per_arm


def pair_intervals(
    row: dict[str, Any],
    boot: Mapping[str, np.ndarray] | None,
    base: str,
    others: Sequence[str],
    seeds: Sequence[int],
    settings: Settings,
) -> None:
    """Fills `row` with the difference and relative gain of every compared arm over the baseline and their
    intervals (bootstrap from `boot`, the per-arm resamples of `bootstrap_row`; t over seeds)."""
    values, bm = row["values"], row["mean"][base]
    row["delta"] = {a: None if row["mean"][a] is None or bm is None else row["mean"][a] - bm for a in others}
    row["gain"] = {a: relative_gain(row["mean"][a], bm) for a in others}
    row["gain_per_seed"] = {
        a: {str(s): relative_gain(values[a][str(s)], values[base][str(s)]) for s in seeds} for a in others
    }
    conf = settings.confidence
    row["delta_ci"] = {
        a: None if boot is None else percentile_interval(boot[a] - boot[base], conf) for a in others
    }
    row["gain_ci"] = {
        a: None if boot is None else percentile_interval(relative_gain_samples(boot[a], boot[base]), conf)
        for a in others
    }
    diffs = {
        a: [
            None
            if values[a][str(s)] is None or values[base][str(s)] is None
            else values[a][str(s)] - values[base][str(s)]
            for s in seeds
        ]
        for a in others
    }
    row["delta_seed_ci"] = {a: t_interval(diffs[a], conf) for a in others}
    row["gain_seed_ci"] = {a: t_interval(list(row["gain_per_seed"][a].values()), conf) for a in others}


def average_gain(
    table: Mapping[str, Any],
    boot: Mapping[str, Mapping[str, np.ndarray] | None],
    arm: str,
    base: str,
    seeds: Sequence[int],
    settings: Settings,
) -> dict[str, Any]:
    """The paper's average relative gain of `arm` over `base` over the benchmarks flagged for neither and
    whose gain is defined (in every resample too), with its joint bootstrap and t intervals and verdict."""
    left_out: dict[str, str] = {}
    covered = []
    gains = {}
    for b, row in table.items():
        flagged = [
            f"{who}: {', '.join(f['short'] for f in row['flags'][who])}"
            for who in (arm, base)
            if row["flags"][who]
        ]
        if boot[b] is not None:
            gains[b] = relative_gain_samples(boot[b][arm], boot[b][base])
        if flagged:
            left_out[b] = "; ".join(flagged)
        elif row["gain"][arm] is None:
            left_out[b] = "gain undefined (baseline mean 0 or missing)"
        elif b in gains and not np.all(np.isfinite(gains[b])):
            zero = int(np.sum(~np.isfinite(gains[b])))
            left_out[b] = f"gain undefined in {zero} of {settings.bootstrap.resamples} resamples (baseline 0)"
        else:
            covered.append(b)
    gain = statistics.fmean(table[b]["gain"][arm] for b in covered) if covered else None
    ci = None
    if covered and all(b in gains for b in covered):
        ci = percentile_interval(np.mean([gains[b] for b in covered], axis=0), settings.confidence)
    per_seed = {}
    for s in seeds:
        g = [table[b]["gain_per_seed"][arm][str(s)] for b in covered]
        per_seed[str(s)] = statistics.fmean(g) if g and all(x is not None for x in g) else None
    seed_ci = t_interval(list(per_seed.values()), settings.confidence)
    if covered:
        significant, sentence = verdict(arm, base, [ci, seed_ci])
    else:
        significant, sentence = False, "no benchmark left to average: every one is flagged or undefined"
    return {
        "gain": gain,
        "ci": ci,
        "seed_ci": seed_ci,
        "benchmarks": covered,
        "left_out": left_out,
        "per_seed": per_seed,
        "significant": significant,
        "verdict": sentence,
    }
