"""The same commit on the same machine prints the same table: the tiny experiment run twice from scratch,
in two roots, gives the same report table and the same comparison numbers (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sea.config import compose

pytestmark = [pytest.mark.slow, pytest.mark.long]


def run_all(root: Path) -> Path:
    from flows.pipeline import default_stages
    from sea.runner import execute
    from sea.stages import get_stage

    cfg = compose(["experiment=tiny", "tracking=none", f"paths.root={root}"])
    for name in default_stages(cfg):
        for arm in cfg.arms if get_stage(name).per_arm else [None]:
            execute(name, cfg, arm=arm)
    return Path(cfg.paths.report)


def benchmark_table(report: Path) -> list[str]:
    lines = (report / "report.md").read_text(encoding="utf-8").splitlines()
    return [ln for ln in lines if ln.startswith("|")]


def without_timings(comparison: dict) -> dict:
    """The comparison less wall-clock measurements (labeling throughput), which differ run to run."""
    label = {
        k: v for k, v in comparison["label_quality"].items() if not k.endswith(("per_s", "seconds_labeling"))
    }
    return {**comparison, "label_quality": label}


def test_two_runs_print_the_same_table(tmp_path):
    first, second = run_all(tmp_path / "a"), run_all(tmp_path / "b")
    assert benchmark_table(first) and benchmark_table(first) == benchmark_table(second)
    a = json.loads((first / "comparison.json").read_text(encoding="utf-8"))
    b = json.loads((second / "comparison.json").read_text(encoding="utf-8"))
    assert without_timings(a) == without_timings(b)
