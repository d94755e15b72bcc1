"""`report`: the SEA vs baseline comparison over every seed and arm: reads the runs' folders, computes
the statistics (`sea.eval.compare`) and renders them (`sea.eval.render`).

Reads `<paths.evaluate>/seed<s>/<arm>/scores.json` for every seed of `seeds` and arm of `arms` (a missing
one is an error naming it), the per-unit `outcomes.json` next to it (absent: no bootstrap intervals),
`<paths.align>/seed<s>/<arm>/train_log.jsonl` (stage-1 curves; absent logs are left out of the plot)
and, when present, the label stage's metrics `<paths.metrics>/label.json`.

Writes under `paths.report`:

- `report.md`: the headline metric per benchmark (mean ± sample std over seeds per arm with a paired
  bootstrap interval over questions and degenerate-answer flags, difference and relative gain of every
  arm over `baseline` with intervals, and the average relative gain as in the SEA paper over the
  benchmarks not flagged, with its interval and a verdict), intervals over seeds (>= 3 seeds), the
  per-seed values, the alignment diagnostics, the label quality, and every metric's mean ± std;
- `comparison.json`: the same, machine-readable;
- `benchmarks.png`: a panel per benchmark, a bar per arm with the spread as error bar;
- `align_curves.png`: stage-1 loss, LM loss, SEA loss and learning rate per arm against the step;
- `align_curves.csv`: the same curves (mean over seeds), one column per arm and quantity
  (`<arm>_loss`, ...), for `dvc plots show`.

`report.md`, `comparison.json` and the PNGs are also logged as artifacts under `report/`.

Statistics settings: the `report` config group (conf/report/default.yaml; `sea.eval.stats`).

Metrics: `gain/<benchmark>` and `gain/average` (relative gains in percent of the one compared arm; with
several, `gain/<arm>/<benchmark>` and `gain/<arm>/average`) with `/ci_low`, `/ci_high` (bootstrap) and
`/seed_ci_low`, `/seed_ci_high` (t over seeds), `gain/average/benchmarks`, `delta/...` likewise,
`<arm>/<benchmark>/mean`, `/std`, `/ci_low`, `/ci_high`, `/flags`, `<arm>/diagnostics/<name>/mean`,
`seeds`. Undefined values (a baseline mean of 0, one seed's std) are left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from sea.config import select, select_or
from sea.errors import SeaError
from sea.layout import COMPARISON_JSON, OUTCOMES_FILE, REPORT_MD, SCORES_FILE, TRAIN_LOG, instance_subdir
from sea.stages.base import Stage

if TYPE_CHECKING:
    from sea.eval.stats import Settings

log = logging.getLogger(__name__)

CURVES_CSV = "align_curves.csv"
CURVE_KEYS = ("loss", "loss_lm", "loss_sea", "lr")


def write_curves_csv(path: Path, logs: dict[str, dict[int, list[dict]]]) -> None:
    """Per step, each arm's mean over seeds of `CURVE_KEYS` (empty where an arm did not log it)."""
    import csv
    import statistics

    columns = [f"{arm}_{key}" for arm in logs for key in CURVE_KEYS]
    table: dict[int, dict[str, float]] = {}
    for arm, by_seed in logs.items():
        for key in CURVE_KEYS:
            values: dict[int, list[float]] = {}
            for rows in by_seed.values():
                for row in rows:
                    if key in row:
                        values.setdefault(int(row["step"]), []).append(float(row[key]))
            for step, vals in values.items():
                table.setdefault(step, {})[f"{arm}_{key}"] = statistics.fmean(vals)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["step", *columns])
        writer.writeheader()
        for step in sorted(table):
            writer.writerow({"step": step, **table[step]})


def instance_dir(root: str | Path, seed: int, arm: str) -> Path:
    """`<root>/seed<seed>/<arm>` (`sea.layout.instance_subdir`)."""
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


def load_outcomes(
    root: str | Path, seeds: Sequence[int], arms: Sequence[str]
) -> dict[int, dict[str, dict[str, Any]]]:
    """`{seed: {arm: outcomes}}` from `<root>/seed<s>/<arm>/outcomes.json` (written by `evaluate`); a run
    without the file is left out (logged: its benchmarks get no bootstrap interval)."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for s in seeds:
        for a in arms:
            path = instance_dir(root, s, a) / OUTCOMES_FILE
            if not path.is_file():
                log.warning("report: no %s (rerun `evaluate`): no bootstrap intervals", path)
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise SeaError(f"report: {path} is not valid JSON: {e}") from e
            out.setdefault(int(s), {})[a] = data
    return out


def read_train_log(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a `train_log.jsonl` (one per logged step), in file order; [] when the file is absent."""
    from sea.utils.io import read_jsonl

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


def write_report(
    out: str | Path,
    scores_root: str | Path,
    align_root: str | Path,
    arms: Sequence[str],
    seeds: Sequence[int],
    label_json: str | Path | None = None,
    baseline: str | None = None,
    *,
    settings: Settings,
) -> dict[str, Any]:
    """Read the per-(seed, arm) scores, outcomes and stage-1 logs, write `report.md`, `comparison.json`,
    `benchmarks.png` and `align_curves.png` into `out`; returns the comparison (against `baseline`,
    by default `sea.eval.compare.BASELINE`)."""
    from sea.eval.compare import BASELINE, compare, read_label_metrics
    from sea.eval.render import ALIGN_PNG, BENCHMARKS_PNG, plot_benchmarks, plot_train_curves, render_markdown

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not arms or not seeds:
        raise SeaError(
            f"report: needs at least one arm and one seed (arms={list(arms)}, seeds={list(seeds)})"
        )
    scores = load_scores(scores_root, seeds, arms)
    outcomes = load_outcomes(scores_root, seeds, arms)
    comparison = compare(scores, arms, seeds, baseline or BASELINE, outcomes, settings=settings)
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


def build(cfg: DictConfig, out: Path) -> dict:
    from sea.eval.compare import flat_summary
    from sea.eval.render import ALIGN_PNG, BENCHMARKS_PNG, summary_text
    from sea.eval.stats import Settings
    from sea.tracking import current

    arms = [str(a) for a in select(cfg, "arms")]
    seeds = [int(s) for s in select(cfg, "seeds")]
    metrics_dir = select_or(cfg, "paths.metrics")
    comparison = write_report(
        out,
        select(cfg, "paths.evaluate"),
        select(cfg, "paths.align"),
        arms,
        seeds,
        label_json=Path(metrics_dir) / "label.json" if metrics_dir else None,
        settings=Settings.from_config(select(cfg, "report")),
    )
    write_curves_csv(out / CURVES_CSV, load_train_logs(select(cfg, "paths.align"), seeds, arms))
    tracker = current()
    for name in (REPORT_MD, COMPARISON_JSON, BENCHMARKS_PNG, ALIGN_PNG):
        tracker.log_artifact(out / name, "report")
    log.info("report:\n%s", summary_text(comparison))
    return flat_summary(comparison)


STAGE = Stage(
    name="report",
    help="SEA vs baseline: per-benchmark table over seeds (mean, spread, relative gain), diagnostics, plots",
    params=("arms", "seeds", "report"),
    out="paths.report",
    build=build,
    deps=("paths.evaluate", "paths.align"),
    tags=(),
)
run = STAGE.run
