"""The report's markdown and PNG plots, from a comparison (`sea.eval.compare.compare`). Pure functions of
the comparison dict, so a saved `comparison.json` renders the same."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.stats import finite
from sea.layout import COMPARISON_JSON

BENCHMARKS_PNG = "benchmarks.png"
ALIGN_PNG = "align_curves.png"
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
    "label_precision": "labelled patches whose top-1 is right",
    "sampled_precision": "chance that the label align draws (score-weighted, Eq. 9) is right",
}


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


def _interval(ci: Sequence[float] | None, signed: bool = False) -> str:
    if ci is None:
        return ""
    fmt = "{:+.2f}" if signed else "{:.2f}"
    return f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"


def _flag_text(flags: Sequence[Mapping[str, Any]], n_seeds: int) -> str:
    """ " ⚠ yes 100 %; ≤ chance" (with the seeds when not all are flagged), or ""."""
    if not flags:
        return ""
    parts = [
        f["short"] + ("" if len(f["seeds"]) == n_seeds else f" ({len(f['seeds'])}/{n_seeds} seeds)")
        for f in flags
    ]
    return " ⚠ " + ", ".join(parts)


def _arm_cell(row: Mapping[str, Any], arm: str, n_seeds: int) -> str:
    mean = row["mean"][arm]
    if mean is None:
        return "-"
    text = f"{mean:.2f}" if n_seeds == 1 else _mean_std(mean, row["std"][arm])
    return text + _interval(row["ci"][arm]) + _flag_text(row["flags"][arm], n_seeds)


def _names(comparison: Mapping[str, Any], benches: Iterable[str]) -> str:
    return ", ".join(comparison["benchmarks"][b]["name"] for b in benches) or "none"


def headline_table(comparison: Mapping[str, Any]) -> str:
    """The main table: per benchmark the headline metric's chance level and, per arm, its mean (± sample
    std over seeds) with the bootstrap interval and any flag; for every arm but the baseline its
    difference (points) and relative gain (percent) with their intervals; then the average relative gain
    over the benchmarks it covers (named in the row)."""
    arms, base, n_seeds = comparison["arms"], comparison.get("baseline"), len(comparison["seeds"])
    others = [a for a in arms if a != base] if base else []
    header = ["benchmark", "metric", "chance", *arms]
    for a in others:
        header += [f"Δ {a}", f"gain {a} (%)"]
    rows = []
    for row in comparison["benchmarks"].values():
        cells = [row["name"], row["description"], _num(row["chance"])]
        cells += [_arm_cell(row, a, n_seeds) for a in arms]
        for a in others:
            cells += [
                _signed(row["delta"][a]) + _interval(row["delta_ci"][a], True),
                _signed(row["gain"][a]) + _interval(row["gain_ci"][a], True),
            ]
        rows.append(cells)
    for a in others:
        avg = comparison["average"][a]
        last = [f"average relative gain, {a} ({_names(comparison, avg['benchmarks'])})", "", ""]
        last += [""] * len(arms)
        for b in others:
            last += ["", _signed(avg["gain"]) + _interval(avg["ci"], True) if b == a else ""]
        rows.append(last)
    return _table(header, rows)


def average_lines(comparison: Mapping[str, Any]) -> list[str]:
    """Per compared arm: the average relative gain with its intervals and verdict, what it leaves out and
    why, and whether it covers the SEA paper's Table 2 benchmarks."""
    base, st = comparison.get("baseline"), comparison["statistics"]
    pct = f"{st['confidence'] * 100:g} %"
    lines = []
    for a, avg in (comparison.get("average") or {}).items():
        intervals = []
        if avg["ci"] is not None:
            intervals.append(f"over questions (paired bootstrap){_interval(avg['ci'], True)}")
        if avg["seed_ci"] is not None:
            intervals.append(f"over {len(comparison['seeds'])} seeds (t){_interval(avg['seed_ci'], True)}")
        if not avg["benchmarks"]:
            lines.append(f"- {a} vs {base}: {avg['verdict']}.")
        else:
            lines.append(
                f"- {a} vs {base}, average relative gain over {_names(comparison, avg['benchmarks'])}: "
                f"{_signed(avg['gain'], ' %')}"
                + (f"; {pct} interval {', '.join(intervals)}" if intervals else "")
                + f". Verdict: {avg['verdict']}."
            )
        if avg["left_out"]:
            left = "; ".join(
                f"{comparison['benchmarks'][b]['name']} ({why})" for b, why in avg["left_out"].items()
            )
            lines.append(f"  Left out of the average: {left}.")
        basis = avg["paper_basis"]
        if basis["same"]:
            lines.append("  It covers the SEA paper's eight Table 2 benchmarks, the basis of its average.")
        else:
            paper = ", ".join(basis["paper"])
            diff = []
            if basis["missing"]:
                diff.append("missing " + ", ".join(basis["missing"]))
            if basis["extra"]:
                diff.append("not in the paper: " + ", ".join(basis["extra"]))
            lines.append(
                f"  Not the SEA paper's eight benchmarks ({paper}): {'; '.join(diff)}. Not comparable with "
                "the paper's average relative gain (+7.61 % for Gemma-2B)."
            )
    return lines


def flag_lines(comparison: Mapping[str, Any]) -> list[str]:
    """One bullet per flagged (benchmark, arm, seed) with the flag's detail."""
    lines = []
    for row in comparison["benchmarks"].values():
        for arm, flags in row["flags"].items():
            for f in flags:
                for seed, detail in f["detail"].items():
                    lines.append(f"- {row['name']}, {arm}, seed {seed}: {detail}")
    return lines or ["- none"]


def seed_table(comparison: Mapping[str, Any]) -> str | None:
    """t intervals over seeds per benchmark (arms, difference, gain); None below 3 seeds."""
    rows_in = comparison["benchmarks"].values()
    if not any(ci is not None for row in rows_in for ci in row["seed_ci"].values()):
        return None
    arms, base = comparison["arms"], comparison.get("baseline")
    others = [a for a in arms if a != base] if base else []
    header = ["benchmark", *arms, *(f"Δ {a}" for a in others), *(f"gain {a} (%)" for a in others)]
    rows = []
    for row in rows_in:
        cells = [row["name"], *(_interval(row["seed_ci"][a]).strip() or "-" for a in arms)]
        cells += [_interval(row["delta_seed_ci"][a], True).strip() or "-" for a in others]
        cells += [_interval(row["gain_seed_ci"][a], True).strip() or "-" for a in others]
        rows.append(cells)
    for a in others:
        avg = comparison["average"][a]
        rows.append(
            [f"average relative gain, {a}", *([""] * (len(arms) + 2 * len(others) - 1)),
             _interval(avg["seed_ci"], True).strip() or "-"]
        )  # fmt: skip
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
        last = ["average relative gain (covered benchmarks)", *([""] * (len(arms) * len(seeds)))]
        last += [_signed(comparison["average"][a]["per_seed"][str(s)]) for a in others for s in seeds]
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
    lines += agreement_lines(label)
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


def agreement_lines(label: Mapping[str, float]) -> list[str]:
    """The stored labels' caption agreement (`sea.labeling.agreement`), measured with or without ground
    truth."""
    a = {k.split("/", 2)[2]: v for k, v in label.items() if k.startswith("agreement/labels/")}
    if not a:
        return ["- caption agreement not measured (labels from before it existed)"]
    lines = [
        f"- stored labels, caption agreement (labelled patches naming a word of their own caption): "
        f"{a['patch_agreement']:.3f} vs chance {a['patch_chance']:.3f} (another image's caption); images "
        f"{a['image_agreement']:.3f} vs {a['image_chance']:.3f}",
        f"- stored labels, diversity: top-1 entropy {a['top1_entropy_bits']:.2f} bits, 10 most frequent "
        f"top-1 words on {a['top10_share']:.3f} of labelled patches (the first on "
        f"{a['top1_max_share']:.3f}), distinctness {a['distinctness']:.3f}",
    ]
    if "agreement/images" in label:
        lines.append(f"- caption agreement measured on {int(label['agreement/images'])} pretraining images")
    if "agreement/matches_truth_best" in label:
        same = "yes" if label["agreement/matches_truth_best"] else "no"
        lines.append(f"- caption agreement's best variant is ground truth's best: {same}")
    return lines


def _units(row: Mapping[str, Any]) -> str:
    """What the bootstrap of one benchmark resamples, e.g. "MME: 32 × image (question pair) in 4 strata"."""
    boot = row.get("bootstrap")
    if not boot:
        return (
            f"{row['name']}: none (no per-unit outcomes: `evaluate` ran before them, or its scorer has none)"
        )
    strata = f" in {len(boot['strata'])} strata" if len(boot["strata"]) > 1 else ""
    return f"{row['name']}: {boot['units']} × {boot['unit']}{strata}"


def render_markdown(
    comparison: Mapping[str, Any],
    label: Mapping[str, float] | None = None,
    plots: Sequence[str] = (BENCHMARKS_PNG, ALIGN_PNG),
) -> str:
    arms, seeds, base = comparison["arms"], comparison["seeds"], comparison.get("baseline")
    st = comparison["statistics"]
    pct = f"{st['confidence'] * 100:g} %"
    flags = st["flags"]
    parts = [
        "# SEA vs baseline",
        "",
        f"Arms: {', '.join(arms)}; seeds: {', '.join(map(str, seeds))}. "
        + (
            f"Every arm is compared with `{base}` trained from the same seed. "
            if base
            else "No `baseline` arm: no gains. "
        )
        + "Rates in percent, MME in points. Per arm: the mean over seeds (± sample standard deviation with "
        f"several seeds) and in brackets its {pct} interval from a paired bootstrap over questions "
        f"({st['resamples']} resamples, seed {st['bootstrap_seed']}; the unit per benchmark below). "
        "Relative gain = (arm - baseline) / baseline × 100 on the means; the average relative gain is the "
        "mean of the per-benchmark gains (as in the SEA paper) over the benchmarks flagged for neither arm. "
        f"⚠ flags a degenerate answer distribution: a POPE split's yes-ratio outside "
        f"[{flags['yes_ratio'][0]:g}, {flags['yes_ratio'][1]:g}] %, over {flags['unparsed']:g} % of the "
        "answers unparsed, or a score at or below chance (the column `chance`: the best answerer that "
        "ignores the image).",
        "",
        "## Benchmarks",
        "",
        headline_table(comparison),
        "",
        *average_lines(comparison),
        "",
        "Bootstrap units: " + "; ".join(_units(row) for row in comparison["benchmarks"].values()) + ".",
        "",
        "## Flags",
        "",
        *flag_lines(comparison),
        "",
    ]
    seeds_md = seed_table(comparison)
    if seeds_md:
        parts += [f"## Across seeds ({pct} Student t interval, n - 1 df)", "", seeds_md, ""]
    if base:
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
    """One panel per benchmark (own y scale): a bar per arm at the mean, its bootstrap interval as error
    bar (the sample std without one), the per-seed values as dots, the chance level as a dashed line, the
    relative gain and its interval in the title."""
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
            ci = row["ci"][a]
            yerr = [[mean - ci[0]], [ci[1] - mean]] if ci else (row["std"][a] or 0.0)
            ax.bar(j, mean, yerr=yerr, capsize=4, color=colors[a], alpha=0.8, label=a)
            pts = [row["values"][a][str(s)] for s in seeds]
            pts = [p for p in pts if p is not None]
            ax.scatter([j] * len(pts), pts, s=12, color="black", zorder=3)
        if row["chance"] is not None:
            ax.axhline(row["chance"], color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xticks(range(len(arms)), arms)
        title = f"{row['name']}\n{row['description']}"
        if base:
            gains = [
                f"{a} {_signed(row['gain'][a], '%')}{_interval(row['gain_ci'][a], True)}"
                for a in arms
                if a != base
            ]
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
                    if "step" in r and finite(r.get(key)) is not None
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


# ---- printing ----------------------------------------------------------------------------------


def summary_text(comparison: Mapping[str, Any]) -> str:
    """The headline table and the average's verdict lines (what the flow prints)."""
    return "\n".join([headline_table(comparison), "", *average_lines(comparison)]).rstrip()


def read_report_table(report_dir: str | Path) -> str:
    """`summary_text` of a finished report folder (from its `comparison.json`), for printing."""
    path = Path(report_dir) / COMPARISON_JSON
    if not path.is_file():
        raise SeaError(f"report: {path} not found; run the `report` stage first")
    return summary_text(json.loads(path.read_text(encoding="utf-8")))
