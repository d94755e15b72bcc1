"""The embedded study's document (`flows.study`): the SEA vs baseline comparison with the oracle-label
control, the label-precision sweep as a dose-response plot, and how the study was run. Pure rendering
from the two report folders' `comparison.json`; the researcher's reading of it stays below `MARKER`
(kept when the document is regenerated).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.layout import COMPARISON_JSON

MARKER = "<!-- generated above; what the data show, written by a person, below -->"
PLOT = "embedded_study_dose.png"
PROBE_KEY = "probe/object_f1"


def read_comparison(report_dir: Path) -> dict[str, Any]:
    path = Path(report_dir) / COMPARISON_JSON
    if not path.is_file():
        raise SeaError(f"{path} not found: the study's report stage did not finish")
    return json.loads(path.read_text(encoding="utf-8"))


def clip_label_precision(cfg: Any, label: Mapping[str, float]) -> float | None:
    """The precision of the labels the `sea` arm trains on: the score-weighted draw's (`sampled_precision`)
    under `align.sea.sampling: weighted`, the top-1's under `argmax`."""
    top1 = label.get("quality/labels/label_precision")
    if cfg.align.sea.sampling == "argmax":
        return top1
    return label.get("quality/labels/sampled_precision", top1)


def arm_precisions(cfg: Any, arms: Sequence[str], clip_precision: float | None) -> dict[str, float | None]:
    """Label precision per SEA arm: the oracle arms' configured precision, the CLIP arm's measured one."""
    overrides = cfg.align.arm_overrides
    out: dict[str, float | None] = {}
    for arm in arms:
        source = (overrides.get(arm) or {}).get("label_source") or {}
        if source.get("kind") == "oracle":
            out[arm] = float(source.get("precision", 1.0))
        elif arm == "sea":
            out[arm] = clip_precision
    return out


def dose_points(
    comparison: Mapping[str, Any], precisions: Mapping[str, float | None]
) -> list[dict[str, Any]]:
    """Per SEA arm with a known precision: its average relative gain over the baseline with intervals, and
    its stage-1 probe's object F1 minus the baseline's."""
    base = comparison.get("baseline")
    probe = (comparison.get("diagnostics") or {}).get(PROBE_KEY, {}).get("mean", {})
    points = []
    for arm, p in precisions.items():
        avg = (comparison.get("average") or {}).get(arm)
        if p is None or avg is None:
            continue
        delta = None
        if probe.get(arm) is not None and probe.get(base) is not None:
            delta = probe[arm] - probe[base]
        points.append(
            {
                "arm": arm,
                "precision": p,
                "gain": avg.get("gain"),
                "ci": avg.get("ci"),
                "seed_ci": avg.get("seed_ci"),
                "probe_delta": delta,
                "verdict": avg.get("verdict"),
            }
        )
    return sorted(points, key=lambda x: x["precision"])


def plot_dose(points: Sequence[Mapping[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for p in points:
        color = "tab:red" if p["arm"] == "sea" else "tab:blue"
        if p["gain"] is not None:
            lo, hi = p["ci"] or (p["gain"], p["gain"])
            ax1.errorbar(
                p["precision"],
                p["gain"],
                yerr=[[p["gain"] - lo], [hi - p["gain"]]],
                fmt="o",
                color=color,
                capsize=4,
            )
            ax1.annotate(
                p["arm"], (p["precision"], p["gain"]), textcoords="offset points", xytext=(5, 5), fontsize=8
            )
        if p["probe_delta"] is not None:
            ax2.plot(p["precision"], p["probe_delta"], "o", color=color)
            ax2.annotate(
                p["arm"],
                (p["precision"], p["probe_delta"]),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=8,
            )
    for ax, title in (
        (ax1, "average relative gain over baseline (%), 95% CI"),
        (ax2, "stage-1 probe: object F1, arm - baseline (points)"),
    ):
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_xlabel("label precision (oracle arms: set; sea: CLIP, measured)")
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.05, 1.05)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:+.{digits}f}"


def dose_table(points: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| arm | label precision | average relative gain (%) | 95% CI (questions) | 95% CI (seeds) | probe object F1 Δ | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in points:
        ci = "-" if not p["ci"] else f"[{p['ci'][0]:+.2f}, {p['ci'][1]:+.2f}]"
        sci = "-" if not p["seed_ci"] else f"[{p['seed_ci'][0]:+.2f}, {p['seed_ci'][1]:+.2f}]"
        lines.append(
            f"| {p['arm']} | {p['precision']:.2f} | {_fmt(p['gain'])} | {ci} | {sci} | {_fmt(p['probe_delta'], 1)} | {p['verdict'] or '-'} |"
        )
    return "\n".join(lines)


def write_study_doc(
    doc: Path,
    cfg: Any,
    reports: Mapping[str, Path],
    seeds: Sequence[int],
    sweep_seeds: Sequence[int],
    seconds: float,
    command: str,
) -> Path:
    """Write the study document (module docstring) and its plot next to it; returns the document."""
    from sea.eval.compare import read_label_metrics
    from sea.eval.render import summary_text

    main = read_comparison(reports["comparison"])
    dose = read_comparison(reports["dose"])
    label = read_label_metrics(Path(cfg.paths.metrics) / "label.json") or {}
    clip_precision = clip_label_precision(cfg, label)
    points = dose_points(dose, arm_precisions(cfg, dose["arms"], clip_precision))
    sea_point = dose_points(main, arm_precisions(cfg, ["sea"], clip_precision))
    doc = Path(doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    plot_dose([*points, *sea_point], doc.parent / PLOT)
    kept = ""
    if doc.is_file() and MARKER in (text := doc.read_text(encoding="utf-8")):
        kept = text.split(MARKER, 1)[1]
    clip = ", ".join(
        f"{k.split('/')[-1]} {label[k]:.3f}"
        for k in (
            "quality/labels/label_precision",
            "quality/labels/sampled_precision",
            "quality/labels/top1",
            "quality/labels/top1_color",
            "quality/labels/top1_shape",
        )
        if label.get(k) is not None
    )
    parts = [
        "# The embedded SEA study",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min wall on {platform.node() or 'this machine'}, "
        f"{platform.processor() or platform.machine()}). Main comparison seeds {list(seeds)}; "
        f"label-precision sweep seeds {list(sweep_seeds)}. CLIP labels of the `sea` arm: {clip or 'not measured'}.",
        "",
        "## SEA (CLIP labels), SEA (oracle labels) and the baseline",
        "",
        summary_text(main),
        "",
        "## Dose-response: SEA's gain against label precision",
        "",
        "Oracle labels corrupted to a set precision (`sea_p10`, `sea_p30`, `sea_p60`, `sea_oracle` = 1.0), "
        f"each against the baseline from the same seeds {list(sweep_seeds)}; `sea` (CLIP labels, from the "
        "main comparison) at its measured precision.",
        "",
        dose_table([*points, *sea_point]),
        "",
        f"![dose-response]({PLOT})",
        "",
        summary_text(dose),
        "",
        MARKER,
    ]
    doc.write_text(
        "\n".join(parts) + (kept if kept else "\n\n## What the data show\n\n(to be written)\n"),
        encoding="utf-8",
    )
    return doc
