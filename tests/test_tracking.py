"""sea.tracking: local store by default, a tracking URI from config, the no-op mode, failed runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from sea import tracking
from sea.config import compose
from sea.runner import execute


def only_run(uri: str, experiment: str):
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_stage_run_logs_params_metrics_and_config_to_the_local_store(tiny_cfg):
    metrics = execute("world", tiny_cfg)
    assert Path(tiny_cfg.tracking.store, "mlflow.db").is_file()
    client, run = only_run(tracking.tracking_uri(tiny_cfg), tiny_cfg.tracking.experiment)
    assert run.info.run_name == "world" and run.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in run.data.tags  # top-level when no parent is given
    assert run.data.params["data.world.n_pretrain"] == str(tiny_cfg.data.world.n_pretrain)
    assert run.data.metrics["pretrain_images"] == metrics["pretrain_images"] == 48
    # Lineage the run page shows (source, commit, user) and the experiment opens on runs and models.
    import subprocess

    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert run.data.tags["mlflow.source.git.commit"] == head and run.data.tags["mlflow.user"]
    assert run.data.tags["mlflow.source.type"] == "LOCAL" and run.data.tags["mlflow.source.name"]
    experiment = client.get_experiment_by_name(tiny_cfg.tracking.experiment)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    config = client.download_artifacts(run.info.run_id, "config.yaml", str(Path(tiny_cfg.paths.root)))
    assert "n_pretrain: 48" in Path(config).read_text()
    artifact_root = Path(tiny_cfg.tracking.store).resolve() / "artifacts"
    assert artifact_root.is_dir(), "artifacts must stay under paths.root"


def test_tracking_uri_from_config_and_parent_from_env(tiny_overrides, tmp_path: Path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/elsewhere.db"
    cfg = compose([*tiny_overrides, f"tracking.uri={uri}", "tracking.experiment=other"])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with tracking.pipeline_run(cfg, ["world"]) as parent:
        monkeypatch.setenv(tracking.PARENT_ENV, parent.run_id)
        execute("world", cfg)
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("other").experiment_id])
    child = next(r for r in runs if r.info.run_name == "world")
    assert child.data.tags["mlflow.parentRunId"] == parent.run_id
    assert not Path(cfg.tracking.store, "mlflow.db").exists()
    assert not (cwd / "mlruns").exists(), "no stray store in the working directory"
    assert (tmp_path / "artifacts").is_dir(), "artifacts beside the database"


def test_tracking_none_writes_no_store_but_still_metrics(tiny_overrides):
    cfg = compose([*tiny_overrides, "tracking=none"])
    execute("world", cfg)
    assert not Path(cfg.tracking.store).exists()
    assert Path(cfg.paths.metrics, "world.json").is_file()
    assert tracking.current().run_id is None


def test_a_failing_stage_marks_its_run_failed(tiny_overrides):
    cfg = compose([*tiny_overrides, "data.world.image_size=60"])  # not divisible by patch size 8
    with pytest.raises(ValueError, match="divisible"):
        execute("world", cfg)
    _, run = only_run(tracking.tracking_uri(cfg), cfg.tracking.experiment)
    assert run.info.status == "FAILED"
    assert not Path(cfg.paths.metrics, "world.json").exists()


def test_a_stage_run_records_what_it_read_as_datasets(tiny_cfg):
    execute("world", tiny_cfg)
    execute("prepare", tiny_cfg)
    client = MlflowClient(tracking_uri=tracking.tracking_uri(tiny_cfg))
    experiment = client.get_experiment_by_name(tiny_cfg.tracking.experiment)
    [run] = client.search_runs([experiment.experiment_id], "attributes.run_name = 'prepare'")
    inputs = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"pretrain.json", "instruct.json"}
    assert all(len(d.digest) == 16 and d.source_type == "local" for d in inputs.values())
    assert str(Path(tiny_cfg.paths.world).resolve() / "pretrain.json") in inputs["pretrain.json"].source


def test_runs_carry_the_tags_mlflow_start_run_sets(tmp_path: Path):
    """Our client-made runs get the same `mlflow.*` tags as a nested run from MLflow's fluent API (source,
    git commit and branch of the entry script, user, parent), so run pages and nesting show the same."""
    import json
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    probe = subprocess.run(
        [sys.executable, str(repo / "tests" / "fixtures" / "lineage_probe.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # the entry script, not the working directory, decides the git context
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    tags = json.loads(probe.stdout.strip().splitlines()[-1])

    def mlflow_tags(run_tags: dict) -> dict:
        return {k: v for k, v in run_tags.items() if k.startswith("mlflow.") and k != "mlflow.runName"}

    assert mlflow_tags(tags["ours"]) == mlflow_tags(tags["fluent"])
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=repo
    ).stdout.strip()
    assert tags["ours"]["mlflow.source.git.commit"] == head
    assert tags["ours"]["mlflow.source.name"] == str(repo / "tests" / "fixtures" / "lineage_probe.py")
    assert {"mlflow.parentRunId", "mlflow.user", "mlflow.source.type"} <= set(tags["ours"])


def test_a_result_that_ends_a_curve_is_logged_once(tiny_cfg):
    """One series per quantity: a stage result that is the last point of a per-step curve (`loss` of
    `train/loss`) stays in the curve; results without a curve are single values."""
    with tracking.stage_run(tiny_cfg, "align", {}) as tracker:
        for step, loss in enumerate([3.0, 2.0, 1.5], start=1):
            tracker.log_metrics({"loss": loss, "sea/acc": 0.5}, step=step)  # prefix-free: its own curve
            tracker.log_metrics({"train/lr": 0.1 * step}, step=step)
        tracker.log_results({"loss": 1.5, "lr": 0.3, "sea/acc": 0.5, "steps": 3, "final_logit_scale": 14.0})
    client, run = only_run(tracking.tracking_uri(tiny_cfg), tiny_cfg.tracking.experiment)
    assert set(run.data.metrics) == {"loss", "sea/acc", "train/lr", "steps", "final_logit_scale"}
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [3.0, 2.0, 1.5]
    assert len(client.get_metric_history(run.info.run_id, "train/lr")) == 3
    assert [m.step for m in client.get_metric_history(run.info.run_id, "steps")] == [0]


def test_a_model_without_flavor_is_logged_as_files_and_registered(tiny_cfg, tmp_path: Path):
    """An instruct output that was not exported to transformers: a LoggedModel of the run holding the
    folder's files, registered; the scores of a later stage are logged against it."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "sea_mllm.json").write_text("{}")
    with tracking.stage_run(tiny_cfg, "instruct", {}) as tracker:
        version = tracker.log_files_model(folder, "sea-tiny-instruct-sea", {"sea.seed": 0, "sea.arm": "sea"})
    with tracking.stage_run(tiny_cfg, "evaluate", {}) as scorer:
        model_id = scorer.score_model_version("sea-tiny-instruct-sea", 0, {"evaluate/pope/f1": 50.0})
        scorer.log_results({"pope/f1": 50.0}, model_id=model_id)
    client = MlflowClient(tracking_uri=tracking.tracking_uri(tiny_cfg))
    mv = client.get_model_version("sea-tiny-instruct-sea", version)
    assert tracking.logged_model_id(mv) == model_id and mv.run_id == tracker.run_id
    assert mv.source == f"models:/{model_id}"
    assert mv.tags["evaluate/pope/f1"] == "50"
    logged = client.get_logged_model(model_id)
    assert logged.source_run_id == tracker.run_id and str(logged.status) == "READY"
    assert [(m.key, m.value, m.run_id) for m in logged.metrics] == [("pope/f1", 50.0, scorer.run_id)]
    assert [a.path for a in client.list_logged_model_artifacts(model_id)] == ["sea_mllm.json"]
    assert not Path("mlflow.db").exists() and not Path("mlruns").exists(), "no store in the working directory"
