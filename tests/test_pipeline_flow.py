"""The Prefect flow on the tiny config: one MLflow parent run and one child run per stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sea.stages import STAGE_NAMES
from sea.tracking import tracking_uri


@pytest.fixture(scope="module")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def runs_by_kind(client: MlflowClient, experiment: str) -> tuple[list, list]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sea.kind") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("sea.kind") == "stage"]
    return parents, children


def test_flow_logs_one_parent_and_one_child_per_stage(prefect_server, tiny_overrides, tiny_cfg):
    from flows.pipeline import sea_pipeline

    results = sea_pipeline(overrides=tiny_overrides)
    assert list(results) == list(STAGE_NAMES)

    client = MlflowClient(tracking_uri=tracking_uri(tiny_cfg))
    parents, children = runs_by_kind(client, tiny_cfg.tracking.experiment)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == sorted(STAGE_NAMES)
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        stage = child.info.run_name
        stored = json.loads((Path(tiny_cfg.paths.metrics) / f"{stage}.json").read_text())
        logged = child.data.metrics
        for key, value in stored.items():
            assert logged[key] == pytest.approx(value), (stage, key)
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"config.yaml", f"{stage}.json"} <= artifacts
    assert parent.data.params["data.world.n_pretrain"] == str(tiny_cfg.data.world.n_pretrain)

    # A second run finds every stage finished with the same config and skips it.
    again = sea_pipeline(overrides=tiny_overrides)
    assert again == results
    parents, children = runs_by_kind(client, tiny_cfg.tracking.experiment)
    assert len(parents) == 2
    newest = max(parents, key=lambda r: r.info.start_time).info.run_id
    second = [c for c in children if c.data.tags["mlflow.parentRunId"] == newest]
    assert sorted(c.data.tags["sea.skipped"] for c in second) == ["true"] * len(STAGE_NAMES)


def test_unknown_stage_subset_is_refused(tiny_cfg):
    from flows.pipeline import select_stages

    assert select_stages(tiny_cfg, ["prepare", "world"]) == ["world", "prepare"]
    with pytest.raises(ValueError, match="trian"):
        select_stages(tiny_cfg, ["trian"])
