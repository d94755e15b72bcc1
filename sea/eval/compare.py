"""The SEA vs baseline comparison: headline metric per benchmark, per seed and arm; mean, sample std and
relative gain; diagnostics and label quality; the markdown report and its PNG plots. Pure functions (no
tracking); `sea.stages.report` wires them into a stage.

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
`(mean_arm - mean_baseline) / mean_baseline * 100` (undefined when the baseline mean is 0). The summary
is the paper's: the mean over benchmarks of the per-benchmark relative gains (benchmarks with an
undefined gain left out, and named). Also per seed, pairing the arms trained from the same seed.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.report import flat_metrics, metric_name

log = logging.getLogger(__name__)

BASELINE = "baseline"
SCORES_FILE = "scores.json"
TRAIN_LOG = "train_log.jsonl"
REPORT_MD = "report.md"
COMPARISON_JSON = "comparison.json"
BENCHMARKS_PNG = "benchmarks.png"
ALIGN_PNG = "align_curves.png"

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
    "sqa": "SQA-IMG",
    "scienceqa": "SQA-IMG",
    "mmbench": "MMBench",
    "mmbench_cn": "MMBench-CN",
    "pope": "POPE",
    "mme": "MME",
    "seed": "SEED",
}
# Table order: the paper's columns first, then LLaVA-1.5's other benchmarks; unknown ones after, by name.
ORDER = ("vqav2", "textvqa", "gqa", "sqa", "scienceqa", "mmbench", "mmbench_cn", "pope", "mme", "seed")
CURVES = (
    ("loss", "loss (total)"),
    ("loss_lm", "LM loss"),
    ("loss_sea", "SEA loss"),
    ("lr", "learning rate"),
)
LABEL_QUALITY = {
    "top1": "object patches whose top-1 label is right",
    "topn": "object patches with a right word among the kept labels",
    "top1_color": "top-1 is the object's colour word",
    "top1_shape": "top-1 is the object's shape word",
    "fg_labelled": "object patches with a label",
    "bg_unlabelled": "background patches without a label",
    "bg_balanced": "mean of fg_labelled and bg_unlabelled",
    "label_precision": "labelled patches whose top-1 is right, what align samples from",
}


# ---- reading ---------------------------------------------------------------------------------------


def instance_dir(root: str | Path, seed: int, arm: str) -> Path:
    """`<root>/seed<seed>/<arm>` (the layout of `sea.stages.base.instance_subdir`)."""
    from sea.stages.base import instance_subdir

    return Path(root) / instance_subdir(seed, arm)


def load_scores(root: str | Path, seeds: Sequence[int], arms: Sequence[str]) -> dict[int, dict[str, dict]]:
    """`{seed: {arm: scores}}` from `<root>/seed<s>/<arm>/scores.json`; a SeaError naming every missing
    file."""
    missing = [
        instance_dir(root, s, a) / SCORES_FILE
        for s in seeds
        for a in arms
        if not (instance_dir(root, s, a) / SCORES_FILE).is_file()
    ]
    if missing:
        raise SeaError(
            f"report: {len(missing)} scores file(s) missing (run the `evaluate` stage for every seed and "
            f"arm first): " + ", ".join(str(p) for p in missing)
        )
    out: dict[int, dict[str, dict]] = {}
    for s in seeds:
        for a in arms:
            path = instance_dir(root, s, a) / SCORES_FILE
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise SeaError(f"report: {path} is not valid JSON: {e}") from e
            if not isinstance(data, dict):
                raise SeaError(f"report: {path} is not a JSON object of benchmark results")
            out.setdefault(int(s), {})[a] = data
    return out


def read_train_log(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a `train_log.jsonl` (one per logged step), in file order; [] when the file is absent."""
    from sea.eval.answers import read_jsonl

    return read_jsonl(path) if Path(path).is_file() else []


def load_train_logs(
    root: str | Path, seeds: Sequence[int], arms: Sequence[str]
) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """`{arm: {seed: rows}}` of `<root>/seed<s>/<arm>/train_log.jsonl`; absent logs are left out (logged)."""
    out: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for a in arms:
        for s in seeds:
            path = instance_dir(root, s, a) / TRAIN_LOG
            rows = read_train_log(path)
            if rows:
                out.setdefault(a, {})[int(s)] = rows
            else:
                log.warning("report: no train log at %s", path)
    return out


def read_label_metrics(path: str | Path) -> dict[str, float] | None:
    """The label stage's metrics (`<paths.metrics>/label.json`), or None when absent."""
    path = Path(path)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if _finite(v) is not None}


# ---- statistics ------------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation (n - 1), n) of the finite values; std is None below two values,
    mean is None without any."""
    vals = [v for v in (_finite(x) for x in values) if v is not None]
    if not vals:
        return None, None, 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None), len(vals)


def relative_gain(value: float | None, baseline: float | None) -> float | None:
    """`(value - baseline) / baseline * 100`; None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0:
        return None
    return (value - baseline) / baseline * 100


def headline(name: str, result: Mapping[str, Any]) -> tuple[str, str, float | None]:
    """(metric key, description, value) of a benchmark result's headline metric (see the module doc)."""
    metrics = result.get("metrics") or {}
    known = HEADLINES.get(name) or HEADLINES.get(str(result.get("benchmark", "")))
    if name == "scienceqa":
        known = HEADLINES["sqa"]
    if known is not None and known[0] == "f1" and result.get("splits"):
        f1s = [s.get("f1") for s in result["splits"].values()]
        if f1s and all(_finite(v) is not None for v in f1s):
            return "f1", f"F1, mean of {len(f1s)} splits", statistics.fmean(f1s)
    if known is not None and known[0] in metrics:
        return known[0], known[1], _finite(metrics[known[0]])
    if not metrics:
        return "", "no metrics", None
    first = next(iter(metrics))
    return first, f"{first} (first metric)", _finite(metrics[first])


def _bench_order(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    known = [n for n in ORDER if n in names]
    return known + sorted(n for n in names if n not in ORDER)


def compare(
    scores: Mapping[int, Mapping[str, Mapping[str, Any]]],
    arms: Sequence[str],
    seeds: Sequence[int],
    baseline: str = BASELINE,
) -> dict[str, Any]:
    """The comparison table (JSON-serialisable, seeds as string keys) from `{seed: {arm: scores}}`.

    Per benchmark: `metric`, `description`, `values[arm][seed]`, `mean[arm]`, `std[arm]` (None for one
    seed), `n[arm]`, and for every arm but the baseline `delta[arm]` (points) and `gain[arm]` (percent, on
    the means). `average_gain[arm]`: mean over benchmarks of `gain[arm]`; `average_gain_per_seed[arm][seed]`:
    the same on one seed's values. `diagnostics[name]` and `metrics[name]` (every flat metric): `mean`,
    `std`, `n` per arm.
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
    for b in benches:
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
                    value = _finite((res.get("metrics") or {}).get(metric))
                values[a][str(s)] = value
        row: dict[str, Any] = {
            "name": DISPLAY.get(b, b),
            "metric": metric,
            "description": description,
            "values": values,
        }
        stats = {a: mean_std(values[a].values()) for a in arms}
        row["mean"] = {a: stats[a][0] for a in arms}
        row["std"] = {a: stats[a][1] for a in arms}
        row["n"] = {a: stats[a][2] for a in arms}
        if base:
            bm = row["mean"][base]
            row["delta"] = {
                a: None if row["mean"][a] is None or bm is None else row["mean"][a] - bm for a in others
            }
            row["gain"] = {a: relative_gain(row["mean"][a], bm) for a in others}
            row["gain_per_seed"] = {
                a: {str(s): relative_gain(values[a][str(s)], values[base][str(s)]) for s in seeds}
                for a in others
            }
        table[b] = row

    out: dict[str, Any] = {"arms": arms, "seeds": seeds, "baseline": base, "benchmarks": table}
    if base:
        out["average_gain"] = {}
        out["average_gain_benchmarks"] = {}
        out["average_gain_per_seed"] = {}
        for a in others:
            gains = {b: r["gain"][a] for b, r in table.items() if r["gain"][a] is not None}
            out["average_gain"][a] = statistics.fmean(gains.values()) if gains else None
            out["average_gain_benchmarks"][a] = list(gains)
            per_seed = {}
            for s in seeds:
                g = [r["gain_per_seed"][a][str(s)] for r in table.values()]
                g = [x for x in g if x is not None]
                per_seed[str(s)] = statistics.fmean(g) if g else None
            out["average_gain_per_seed"][a] = per_seed
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


def _summaries(per_arm: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """`{name: {"mean": {arm}, "std": {arm}, "n": {arm}}}` over the per-seed metric dicts of every arm."""
    names = list(dict.fromkeys(k for rows in per_arm.values() for r in rows for k in r))
    out = {}
    for name in names:
        stats = {a: mean_std(r.get(name) for r in rows) for a, rows in per_arm.items()}
        out[name] = {
            "mean": {a: m for a, (m, _, _) in stats.items()},
            "std": {a: sd for a, (_, sd, _) in stats.items()},
            "n": {a: n for a, (_, _, n) in stats.items()},
        }
    return out


def flat_summary(comparison: Mapping[str, Any]) -> dict[str, float]:
    """MLflow-safe finite metrics: `gain/<benchmark>` and `gain/average` (with several compared arms
    `gain/<arm>/<benchmark>`, `gain/<arm>/average`), `<arm>/<benchmark>/mean` and `/std`,
    `<arm>/diagnostics/<name>/mean`, and `seeds`."""
    out: dict[str, float] = {"seeds": float(len(comparison["seeds"]))}
    base = comparison.get("baseline")
    others = [a for a in comparison["arms"] if a != base] if base else []

    def put(name: str, value: Any) -> None:
        value = _finite(value)
        if value is not None:
            out[name] = value

    def gain_name(arm: str, *parts: str) -> str:
        return metric_name("gain", *parts) if len(others) == 1 else metric_name("gain", arm, *parts)

    for b, row in comparison["benchmarks"].items():
        for a in comparison["arms"]:
            put(metric_name(a, b, "mean"), row["mean"][a])
            put(metric_name(a, b, "std"), row["std"][a])
        for a in others:
            put(gain_name(a, b), row["gain"][a])
    for a in others:
        put(gain_name(a, "average"), comparison["average_gain"][a])
    for name, row in comparison["diagnostics"].items():
        for a in comparison["arms"]:
            put(metric_name(a, "diagnostics", *name.split("/"), "mean"), row["mean"][a])
    return out


# ---- markdown --------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:+.2f}{suffix}"


def _mean_std(mean: float | None, std: float | None, digits: int = 2) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} ± {_num(std, digits)}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def headline_table(comparison: Mapping[str, Any]) -> str:
    """The main table: per benchmark the headline metric's mean ± sample std over seeds per arm and, for
    every arm but the baseline, its difference (points) and relative gain (percent), then the average
    relative gain."""
    arms, base = comparison["arms"], comparison.get("baseline")
    others = [a for a in arms if a != base] if base else []
    header = ["benchmark", "metric", *arms]
    for a in others:
        header += [f"Δ {a}", f"gain {a} (%)"]
    rows = []
    for row in comparison["benchmarks"].values():
        cells = [row["name"], row["description"]]
        cells += [_mean_std(row["mean"][a], row["std"][a]) for a in arms]
        for a in others:
            cells += [_signed(row["delta"][a]), _signed(row["gain"][a])]
        rows.append(cells)
    if others:
        last = ["**average relative gain**", "", *([""] * len(arms))]
        for a in others:
            last += ["", f"**{_signed(comparison['average_gain'][a])}**"]
        rows.append(last)
    return _table(header, rows)


def per_seed_table(comparison: Mapping[str, Any]) -> str:
    """Headline values per seed and arm (and the paired per-seed relative gain of every compared arm)."""
    arms, seeds, base = comparison["arms"], comparison["seeds"], comparison.get("baseline")
    others = [a for a in arms if a != base] if base else []
    header = ["benchmark", *(f"{a} s{s}" for a in arms for s in seeds)]
    header += [f"gain {a} s{s} (%)" for a in others for s in seeds]
    rows = []
    for row in comparison["benchmarks"].values():
        cells = [row["name"]] + [_num(row["values"][a][str(s)]) for a in arms for s in seeds]
        cells += [_signed(row["gain_per_seed"][a][str(s)]) for a in others for s in seeds]
        rows.append(cells)
    if others:
        last = ["**average relative gain**", *([""] * (len(arms) * len(seeds)))]
        last += [
            f"**{_signed(comparison['average_gain_per_seed'][a][str(s)])}**" for a in others for s in seeds
        ]
        rows.append(last)
    return _table(header, rows)


def summary_table(summaries: Mapping[str, Mapping[str, Any]], arms: Sequence[str], digits: int = 2) -> str:
    """One row per metric: mean ± sample std per arm."""
    rows = [
        [name, *(_mean_std(s["mean"][a], s["std"][a], digits) for a in arms)] for name, s in summaries.items()
    ]
    return _table(["metric", *arms], rows)


def label_quality_lines(label: Mapping[str, float] | None) -> list[str]:
    """Markdown bullet lines about the stored labels from the label stage's metrics (fractions 0-1)."""
    if label is None:
        return ["- no label-stage metrics (`label.json` absent)"]
    lines = []
    for key, what in (
        ("labelled_patch_fraction", "patches with labels"),
        ("labels_per_patch", "labels per patch"),
    ):
        if key in label:
            lines.append(f"- {what}: {label[key]:.3f}")
    stored = {k.split("/", 2)[2]: v for k, v in label.items() if k.startswith("quality/labels/")}
    if not stored:
        lines.append("- label quality not measured (no ground truth, e.g. real data)")
        return lines
    for key in [k for k in LABEL_QUALITY if k in stored] + [k for k in stored if k not in LABEL_QUALITY]:
        value = stored[key]
        lines.append(f"- stored labels, {key} ({LABEL_QUALITY.get(key, key)}): {value:.3f}")
    if "quality/configured_is_best" in label:
        best = "yes" if label["quality/configured_is_best"] else "no"
        lines.append(f"- configured labeling variant is the best measured one: {best}")
    if "quality/images" in label:
        lines.append(f"- measured on {int(label['quality/images'])} images with ground truth")
    return lines


def render_markdown(
    comparison: Mapping[str, Any],
    label: Mapping[str, float] | None = None,
    plots: Sequence[str] = (BENCHMARKS_PNG, ALIGN_PNG),
) -> str:
    arms, seeds, base = comparison["arms"], comparison["seeds"], comparison.get("baseline")
    parts = [
        "# SEA vs baseline",
        "",
        f"Arms: {', '.join(arms)}; seeds: {', '.join(map(str, seeds))}. "
        + (f"Baseline arm: `{base}`. " if base else "No `baseline` arm: no gains. ")
        + "Mean ± sample standard deviation (n - 1) over seeds (`-` with one seed). Rates in percent, "
        "MME in points. Relative gain = (arm - baseline) / baseline × 100 on the means; the average "
        "relative gain is the mean of the per-benchmark gains (as in the SEA paper).",
        "",
        "## Benchmarks",
        "",
        headline_table(comparison),
        "",
    ]
    if base:
        for a, names in comparison["average_gain_benchmarks"].items():
            left = [comparison["benchmarks"][b]["name"] for b in comparison["benchmarks"] if b not in names]
            if left:
                parts += [
                    f"Average gain of {a} leaves out {', '.join(left)} (baseline mean 0 or missing).",
                    "",
                ]
    parts += ["## Per seed", "", per_seed_table(comparison), ""]
    parts += ["## Alignment diagnostics", ""]
    if comparison["diagnostics"]:
        parts += [summary_table(comparison["diagnostics"], arms, 3), ""]
    else:
        parts += ["No diagnostics in the scores.", ""]
    parts += ["## Label quality", "", *label_quality_lines(label), ""]
    parts += ["## Plots", "", *(f"![{p}]({p})" for p in plots), ""]
    parts += ["## All metrics", "", summary_table(comparison["metrics"], arms), ""]
    return "\n".join(parts)


def read_report_table(report_dir: str | Path) -> str:
    """The headline table of a finished report folder (from its `comparison.json`), for printing."""
    path = Path(report_dir) / COMPARISON_JSON
    if not path.is_file():
        raise SeaError(f"report: {path} not found; run the `report` stage first")
    return headline_table(json.loads(path.read_text(encoding="utf-8")))


# ---- plots -----------------------------------------------------------------------------------------


def _colors(arms: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {a: cmap(i % 10) for i, a in enumerate(arms)}


def _save(fig: Any, path: str | Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    return Path(path)


def plot_benchmarks(comparison: Mapping[str, Any], path: str | Path) -> Path:
    """One panel per benchmark (own y scale): a bar per arm at the mean, the sample std as error bar, the
    per-seed values as dots, the relative gain in the title."""
    from matplotlib.figure import Figure

    arms, seeds, base = comparison["arms"], comparison["seeds"], comparison.get("baseline")
    rows = comparison["benchmarks"]
    colors = _colors(arms)
    n = max(1, len(rows))
    cols = min(4, n)
    nrows = math.ceil(n / cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * nrows))
    if not rows:
        fig.text(0.5, 0.5, "no benchmark scores", ha="center", va="center")
        return _save(fig, path)
    for i, row in enumerate(rows.values()):
        ax = fig.add_subplot(nrows, cols, i + 1)
        for j, a in enumerate(arms):
            mean = row["mean"][a]
            if mean is None:
                continue
            ax.bar(j, mean, yerr=row["std"][a] or 0.0, capsize=4, color=colors[a], alpha=0.8, label=a)
            pts = [row["values"][a][str(s)] for s in seeds]
            pts = [p for p in pts if p is not None]
            ax.scatter([j] * len(pts), pts, s=12, color="black", zorder=3)
        ax.set_xticks(range(len(arms)), arms)
        title = f"{row['name']}\n{row['description']}"
        if base:
            gains = [f"{a} {_signed(row['gain'][a], '%')}" for a in arms if a != base]
            title += "\n" + ", ".join(gains)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    return _save(fig, path)


def _mean_curve(runs: Mapping[int, Mapping[int, float]]) -> tuple[list[int], list[float]]:
    """Mean over seeds at the steps every seed logged."""
    common = sorted(set.intersection(*(set(r) for r in runs.values())))
    return common, [statistics.fmean(r[s] for r in runs.values()) for s in common]


def plot_train_curves(
    logs: Mapping[str, Mapping[int, Sequence[Mapping[str, Any]]]],
    arms: Sequence[str],
    path: str | Path,
    keys: Sequence[tuple[str, str]] = CURVES,
    title: str = "stage 1 (align)",
) -> Path:
    """One panel per key: per arm the mean over seeds (thick) and each seed (thin) against the step."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    colors = _colors(arms)
    cols = 2
    nrows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(5.0 * cols, 3.2 * nrows))
    fig.suptitle(title)
    for i, (key, label) in enumerate(keys):
        ax = fig.add_subplot(nrows, cols, i + 1)
        drawn = False
        for a in arms:
            runs = {
                s: {
                    int(r["step"]): float(r[key])
                    for r in rows
                    if "step" in r and _finite(r.get(key)) is not None
                }
                for s, rows in (logs.get(a) or {}).items()
            }
            runs = {s: r for s, r in runs.items() if r}
            if not runs:
                continue
            drawn = True
            if len(runs) > 1:
                for r in runs.values():
                    steps = sorted(r)
                    ax.plot(steps, [r[s] for s in steps], color=colors[a], alpha=0.25, linewidth=0.8)
            steps, mean = _mean_curve(runs)
            suffix = f" (mean of {len(runs)} seeds)" if len(runs) > 1 else ""
            ax.plot(steps, mean, color=colors[a], linewidth=1.6, label=a + suffix)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


# ---- all of it -------------------------------------------------------------------------------------


def write_report(
    out: str | Path,
    scores_root: str | Path,
    align_root: str | Path,
    arms: Sequence[str],
    seeds: Sequence[int],
    label_json: str | Path | None = None,
    baseline: str = BASELINE,
) -> dict[str, Any]:
    """Read the per-(seed, arm) scores and stage-1 logs, write `report.md`, `comparison.json`,
    `benchmarks.png` and `align_curves.png` into `out`; returns the comparison."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not arms or not seeds:
        raise SeaError(
            f"report: needs at least one arm and one seed (arms={list(arms)}, seeds={list(seeds)})"
        )
    scores = load_scores(scores_root, seeds, arms)
    comparison = compare(scores, arms, seeds, baseline)
    label = read_label_metrics(label_json) if label_json else None
    comparison["label_quality"] = label
    logs = load_train_logs(align_root, seeds, arms)
    plot_benchmarks(comparison, out / BENCHMARKS_PNG)
    plot_train_curves(logs, list(arms), out / ALIGN_PNG)
    (out / REPORT_MD).write_text(render_markdown(comparison, label), encoding="utf-8")
    (out / COMPARISON_JSON).write_text(
        json.dumps(comparison, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return comparison
