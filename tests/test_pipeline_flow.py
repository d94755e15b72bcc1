"""Acceptance: the Prefect flow runs the whole pipeline on the tiny experiment, both arms: one MLflow
parent run, one child per stage and training run, finite metrics everywhere, the report written and
logged; a second run skips every stage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sea.eval.headline import headline_metrics
from sea.stages import STAGE_NAMES, get_stage
from sea.tracking import logged_model_id, metric_key, registered_model_name, stage_run_name, tracking_uri


def runs_by_kind(client: MlflowClient, experiment: str) -> tuple[list, list]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sea.kind") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("sea.kind") == "stage"]
    return parents, children


def expected_runs(cfg) -> dict[str, tuple[str, str | None]]:
    """Run name -> (stage, arm) for every stage run of one pipeline run."""
    out = {}
    for name in STAGE_NAMES:
        if get_stage(name).per_arm:
            for arm in cfg.arms:
                out[stage_run_name(name, {"arm": arm, "seed": cfg.seed})] = (name, arm)
        else:
            out[name] = (name, None)
    return out


def test_flow_runs_every_stage_and_arm_under_one_parent(prefect_server, tiny_overrides, tiny_cfg, capsys):
    from flows.pipeline import main, run_key

    assert main(tiny_overrides) == 0
    printed = capsys.readouterr().out
    assert "| benchmark |" in printed and "average relative gain" in printed, (
        "the comparison table is printed"
    )

    client = MlflowClient(tracking_uri=tracking_uri(tiny_cfg))
    parents, children = runs_by_kind(client, tiny_cfg.tracking.experiment)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    expected = expected_runs(tiny_cfg)
    assert sorted(r.info.run_name for r in children) == sorted(expected)
    for child in children:
        stage, arm = expected[child.info.run_name]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.tags["sea.stage"] == stage and child.data.tags.get("sea.arm") == arm
        stored = json.loads(get_stage(stage).metrics_file(tiny_cfg, arm).read_text())
        assert stored, f"{child.info.run_name}: no metrics"
        curves = per_step_series(client, child)
        for key, value in stored.items():  # each result once: a single value, or the end of its curve
            assert math.isfinite(value), (child.info.run_name, key)
            [logged] = [
                c for c in child.data.metrics if c == metric_key(key) or c in curves and c.endswith(f"/{key}")
            ]
            assert child.data.metrics[logged] == pytest.approx(value), (child.info.run_name, key)
        single = set(child.data.metrics) - set(curves)
        assert not [(k, c) for k in single for c in curves if c.endswith("/" + k)], child.info.run_name
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert "config.yaml" in artifacts
    for arm in tiny_cfg.arms:  # per-step curves of both training stages, per arm
        run = next(c for c in children if c.info.run_name == stage_run_name("align", {"arm": arm, "seed": 0}))
        history = client.get_metric_history(run.info.run_id, "train/loss")
        assert len(history) == run.data.metrics["steps"] > 1
        names = set(run.data.metrics)
        assert {"train/lr", "train/loss_lm"} <= names
        assert ("train/loss_sea" in names) == (arm == "sea") and ("train/sea/logit_scale" in names) == (
            arm == "sea"
        )

    for arm in tiny_cfg.arms:  # the arms differ in the compare view where they really differ
        run = next(c for c in children if c.info.run_name == stage_run_name("align", {"arm": arm, "seed": 0}))
        weight = tiny_cfg.align.sea.weight if arm == "sea" else 0.0
        assert run.data.params["arm"] == arm
        assert float(run.data.params["lambda"]) == float(run.data.params["align.sea.weight"]) == weight
        assert not [k for k in run.data.params if "arm_overrides" in k]

    for arm in tiny_cfg.arms:  # the stage-1 probe ran on each run's adapter, with its chance level
        scored = json.loads(get_stage("evaluate").metrics_file(tiny_cfg, arm).read_text())
        assert {"diagnostics/probe/object_f1", "diagnostics/probe/chance_object_f1"} <= set(scored)

    report = Path(tiny_cfg.paths.report)
    assert (report / "report.md").is_file() and (report / "benchmarks.png").is_file()
    assert {"report/report.md", "report/benchmarks.png"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id, "report")
    }
    # The parent holds the report's headline numbers, not a flattened copy of every stage's metrics.
    comparison = json.loads((report / "comparison.json").read_text())
    assert set(parent.data.metrics) == set(headline_metrics(comparison))
    for arm in tiny_cfg.arms:
        assert parent.data.metrics[f"report/pope/{arm}"] == pytest.approx(
            comparison["benchmarks"]["pope"]["mean"][arm]
        )
    assert parent.data.metrics["report/gqa/delta/sea"] == pytest.approx(
        comparison["benchmarks"]["gqa"]["delta"]["sea"]
    )
    assert not [k for k in parent.data.metrics if k.startswith(run_key("evaluate", "sea", 0))]

    # The flow run carries the table and links to the MLflow runs as a markdown artifact.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as prefect_client:
        [artifact] = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["sea-comparison"]))
        )
    assert "| benchmark |" in artifact.data and f"/runs/{parent.info.run_id})" in artifact.data
    assert all(f"[{name}](" in artifact.data for name in expected)
    with get_client(sync_client=True) as prefect_client:  # the project's log lines reach the flow run
        names = {entry.name for entry in prefect_client.read_logs(limit=200)}
    assert any(n.startswith("sea.") for n in names), names
    check_models(client, tiny_cfg, children)
    assert parent.data.params["data.world.n_pretrain"] == str(tiny_cfg.data.world.n_pretrain)

    # A second run finds every stage run finished with the same config and skips it.
    assert main(tiny_overrides) == 0
    parents, children = runs_by_kind(client, tiny_cfg.tracking.experiment)
    assert len(parents) == 2
    newest = max(parents, key=lambda r: r.info.start_time).info.run_id
    second = [c for c in children if c.data.tags["mlflow.parentRunId"] == newest]
    assert sorted(c.data.tags["sea.skipped"] for c in second) == ["true"] * len(expected)


def per_step_series(client: MlflowClient, run) -> list[str]:
    """The run's metrics logged at more than one step."""
    return [
        k
        for k in run.data.metrics
        if len({m.step for m in client.get_metric_history(run.info.run_id, k)}) > 1
    ]


def check_models(client: MlflowClient, cfg, children: list) -> None:
    """Adapters and models are LoggedModels of their stage runs, registered with arm and seed; the
    versions load with MLflow (pyfunc, pytorch) and work; the evaluation scores are the model's metrics."""
    from sea.tracking import _fluent_tracking_uri

    with _fluent_tracking_uri(tracking_uri(cfg)):  # models:/ URIs resolve in MLflow's global store
        for arm in cfg.arms:
            check_arm_models(client, cfg, children, arm)


def check_arm_models(client: MlflowClient, cfg, children: list, arm: str) -> None:
    """`check_models` for one arm."""
    import mlflow
    import numpy as np
    import pandas as pd
    import torch

    from sea.stages.instruct import example_request

    [adapter] = client.search_model_versions(f"name='{registered_model_name(cfg, 'align', arm)}'")
    [model] = client.search_model_versions(f"name='{registered_model_name(cfg, 'instruct', arm)}'")
    assert adapter.tags["sea.arm"] == model.tags["sea.arm"] == arm and model.tags["sea.seed"] == "0"
    assert float(model.tags["loss"]) > 0 and "evaluate/pope/f1" in model.tags
    for version in (adapter, model):
        logged = client.get_logged_model(logged_model_id(version))
        assert logged.source_run_id == version.run_id and logged.tags["sea.arm"] == arm
        assert mlflow.models.get_model_info(f"models:/{version.name}/{version.version}").signature

    answers = mlflow.pyfunc.load_model(f"models:/{model.name}/{model.version}").predict(
        pd.DataFrame([example_request()]), params={"max_new_tokens": 4}
    )
    assert len(answers) == 1 and isinstance(answers[0], str)
    uri = f"models:/{adapter.name}/{adapter.version}"  # vision features in, LLM embeddings out
    [features_in] = mlflow.models.get_model_info(uri).signature.inputs.inputs
    features = np.random.default_rng(0).standard_normal((3, 5, features_in.shape[-1])).astype(np.float32)
    projected = mlflow.pytorch.load_model(uri)(torch.from_numpy(features)).detach().numpy()
    assert mlflow.pyfunc.load_model(uri).predict(features) == pytest.approx(projected)
    assert projected.shape[:2] == (3, 5)

    evaluate = next(
        c for c in children if c.info.run_name == stage_run_name("evaluate", {"arm": arm, "seed": 0})
    )
    scores = {m.key: m for m in client.get_logged_model(logged_model_id(model)).metrics}
    assert scores["pope/f1"].value == pytest.approx(evaluate.data.metrics["pope/f1"])
    assert scores["pope/f1"].run_id == evaluate.info.run_id


def test_unknown_stage_subset_is_refused(tiny_cfg):
    from flows.pipeline import select_stages

    assert select_stages(tiny_cfg, ["prepare", "world"]) == ["world", "prepare"]
    with pytest.raises(ValueError, match="trian"):
        select_stages(tiny_cfg, ["trian"])
