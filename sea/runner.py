"""Run one stage the same way for every runner (CLI / `dvc repro`, the Prefect flow, tests):
inside its MLflow child run, writing `metrics/<stage>.json` atomically."""

from __future__ import annotations

import logging
import time

from omegaconf import DictConfig

from sea import tracking
from sea.config import config_hash, select
from sea.stages import get_stage
from sea.layout import input_fingerprint
from sea.stages.base import Stage
from sea.utils.dist import process_info
from sea.utils.io import atomic_write_json

log = logging.getLogger(__name__)


def register(tracker: tracking.Tracker, cfg: DictConfig, stage: Stage, arm: str, metrics: dict) -> None:
    """The MLflow model registry side of a per-arm stage (see `Stage.register` / `Stage.scores_for`)."""
    seed = select(cfg, "seed")
    if stage.register:
        tags = {
            "sea.stage": stage.name,
            "sea.arm": arm,
            "sea.seed": seed,
            "sea.config_hash": config_hash(cfg),
        }
        name = tracking.registered_model_name(cfg, stage.name, arm)
        tracker.register_model(stage.out_dir(cfg, arm), name, tags | metrics)
    if stage.scores_for:
        name = tracking.registered_model_name(cfg, stage.scores_for, arm)
        tracker.tag_model_version(name, seed, {f"{stage.name}/{k}": v for k, v in metrics.items()})


def execute(name: str, cfg: DictConfig, parent_run_id: str | None = None, arm: str | None = None) -> dict:
    """Run stage `name` (for a per-arm stage: the run of `arm` at the config's seed), skipped when its
    outputs are finished with this config, and record it in its own MLflow child run and metrics file.

    A GPU stage configured for several processes (`hardware.num_processes` > 1) is started under
    `accelerate launch` instead (`sea.launch`), whose ranks come back here: every rank runs the stage,
    only the main rank tracks it and writes its metrics.
    """
    from sea.launch import needs_launcher, run_launched

    stage = get_stage(name)
    if needs_launcher(cfg, stage):
        return run_launched(name, cfg, parent_run_id, arm)
    if not process_info().is_main:
        return stage.run(cfg, arm)
    params = {key: select(cfg, key) for key in stage.params}
    if stage.per_arm and arm is not None:
        from sea.training.arms import arm_params

        params = arm_params(params, arm)
    run = {"arm": arm, "seed": select(cfg, "seed")} if stage.per_arm else None
    with tracking.stage_run(cfg, name, params, parent_run_id, run=run) as tracker:
        start = time.perf_counter()
        skipped = stage.stored_metrics(cfg, arm) is not None
        metrics = stage.run(cfg, arm)
        seconds = time.perf_counter() - start
        path = atomic_write_json(stage.metrics_file(cfg, arm), metrics)
        tracker.log_metrics({**metrics, "stage/seconds": seconds})
        try:  # the outputs are in place: a tracking failure now costs the record, not the stage
            tracker.log_artifact(path)
            tracker.set_tags({"sea.skipped": str(skipped).lower()})
            tracker.log_inputs({str(p): input_fingerprint(p) for p in stage.dep_paths(cfg, arm)})
            if run and not skipped and cfg.tracking.get("register_models"):
                register(tracker, cfg, stage, arm, metrics)
        except Exception as err:
            log.warning("%s: tracking failed after the stage finished (%s)", name, tracking.one_line(err))
    log.info("%s: %s in %.1f s -> %s", tracker.run_name, "skipped" if skipped else "done", seconds, path)
    return metrics
