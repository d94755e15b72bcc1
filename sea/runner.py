"""Run one stage the same way for every runner (CLI / `dvc repro`, the Prefect flow, tests):
inside its MLflow child run, writing `metrics/<stage>.json` atomically."""

from __future__ import annotations

import logging
import time

from omegaconf import DictConfig

from sea import tracking
from sea.config import config_hash, select
from sea.layout import input_fingerprint
from sea.stages import get_stage
from sea.stages.base import Stage
from sea.utils.dist import process_info
from sea.utils.io import atomic_write_json

log = logging.getLogger(__name__)


def model_tags(cfg: DictConfig, stage: Stage, arm: str, metrics: dict) -> dict:
    """What a registered version of a stage's model carries: stage, arm, seed, config hash, its metrics."""
    return {
        "sea.stage": stage.name,
        "sea.arm": arm,
        "sea.seed": select(cfg, "seed"),
        "sea.config_hash": config_hash(cfg),
    } | metrics


def log_stage_model(
    tracker: tracking.Tracker, cfg: DictConfig, stage: Stage, arm: str, metrics: dict
) -> None:
    """Log the stage's output as an MLflow model of its run, registered as `<run_name>-<stage>-<arm>`."""
    name = tracking.registered_model_name(cfg, stage.name, arm)
    start = time.perf_counter()
    version = stage.log_model(tracker, stage.out_dir(cfg, arm), name, model_tags(cfg, stage, arm, metrics))
    log.info(
        "%s: logged as MLflow model models:/%s/%s in %.1f s",
        stage.name,
        name,
        version,
        time.perf_counter() - start,
    )


def scored_model(
    tracker: tracking.Tracker, cfg: DictConfig, stage: Stage, arm: str, metrics: dict
) -> str | None:
    """For a stage that scores another stage's model (`Stage.scores_for`): tag the registered version of
    the same arm and seed with the scores and return its LoggedModel id (the scores are logged against
    it); None when there is none, or the store fails (the scores are still the run's metrics)."""
    name = tracking.registered_model_name(cfg, stage.scores_for, arm)
    try:
        scores = {f"{stage.name}/{k}": v for k, v in metrics.items()}
        return tracker.score_model_version(name, select(cfg, "seed"), scores)
    except Exception as err:
        log.warning("%s: scores not linked to model %s (%s)", stage.name, name, tracking.one_line(err))
        return None


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
        models = bool(run and not skipped and cfg.tracking.get("register_models"))
        scored = scored_model(tracker, cfg, stage, arm, metrics) if models and stage.scores_for else None
        tracker.log_results(metrics, model_id=scored)
        tracker.log_metrics({"stage/seconds": seconds})
        try:  # the outputs are in place: a tracking failure now costs the record, not the stage
            tracker.log_artifact(path)
            tracker.set_tags({"sea.skipped": str(skipped).lower()})
            tracker.log_inputs({str(p): input_fingerprint(p) for p in stage.dep_paths(cfg, arm)})
            if models and stage.log_model:
                log_stage_model(tracker, cfg, stage, arm, metrics)
        except Exception as err:
            log.warning("%s: tracking failed after the stage finished (%s)", name, tracking.one_line(err))
    log.info("%s: %s in %.1f s -> %s", tracker.run_name, "skipped" if skipped else "done", seconds, path)
    return metrics
