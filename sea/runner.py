"""Run one stage the same way for every runner (CLI / `dvc repro`, the Prefect flow, tests):
inside its MLflow child run, writing `metrics/<stage>.json` atomically."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig

from sea import tracking
from sea.stages import get_stage
from sea.stages.base import select
from sea.utils.dist import process_info
from sea.utils.io import atomic_write_json

log = logging.getLogger(__name__)


def metrics_path(cfg: DictConfig, stage: str) -> Path:
    return Path(cfg.paths.metrics) / f"{stage}.json"


def execute(name: str, cfg: DictConfig, parent_run_id: str | None = None) -> dict:
    """Run stage `name` (skipped when its outputs are finished with this config) and record it.

    Under a multi-process launcher every rank runs the stage; only the main rank tracks it and
    writes its metrics.
    """
    stage = get_stage(name)
    if not process_info().is_main:
        return stage.run(cfg)
    params = {key: select(cfg, key) for key in stage.params}
    with tracking.stage_run(cfg, name, params, parent_run_id) as tracker:
        start = time.perf_counter()
        skipped = stage.stored_metrics(cfg) is not None
        metrics = stage.run(cfg)
        seconds = time.perf_counter() - start
        path = atomic_write_json(metrics_path(cfg, name), metrics)
        tracker.log_metrics({**metrics, "stage/seconds": seconds})
        tracker.log_artifact(path)
        tracker.set_tags({"sea.skipped": str(skipped).lower()})
    log.info("%s: %s in %.1f s -> %s", name, "skipped" if skipped else "done", seconds, path)
    return metrics
