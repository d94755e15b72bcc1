"""`report`: the SEA vs baseline comparison over every seed and arm (`sea.eval.compare`).

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

import logging
from pathlib import Path

from omegaconf import DictConfig

from sea.config import select, select_or
from sea.stages.base import Stage

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


def build(cfg: DictConfig, out: Path) -> dict:
    from sea.eval import compare
    from sea.eval.stats import Settings
    from sea.tracking import current

    arms = [str(a) for a in select(cfg, "arms")]
    seeds = [int(s) for s in select(cfg, "seeds")]
    metrics_dir = select_or(cfg, "paths.metrics")
    comparison = compare.write_report(
        out,
        select(cfg, "paths.evaluate"),
        select(cfg, "paths.align"),
        arms,
        seeds,
        label_json=Path(metrics_dir) / "label.json" if metrics_dir else None,
        settings=Settings.from_config(select_or(cfg, "report", {})),
    )
    write_curves_csv(out / CURVES_CSV, compare.load_train_logs(select(cfg, "paths.align"), seeds, arms))
    tracker = current()
    for name in (compare.REPORT_MD, compare.COMPARISON_JSON, compare.BENCHMARKS_PNG, compare.ALIGN_PNG):
        tracker.log_artifact(out / name, "report")
    log.info("report:\n%s", compare.summary_text(comparison))
    return compare.flat_summary(comparison)


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
