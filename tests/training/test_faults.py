"""Fault injection on the tiny experiment (issue 12): one test per row of the issue's table. Each
asserts the exit status, a one-line message naming the file or key, no `_SUCCESS.json` where the run
failed, and that nothing finished is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sea.__main__ import main as sea_main
from sea.stages.integrity import SUCCESS


@pytest.fixture
def cli(overrides_for, tmp_path: Path, capsys: pytest.CaptureFixture):
    """`cli(stage, *overrides, arm=, root=)` -> (exit status, stderr lines of `python -m sea`, in-process)."""

    def run(stage: str, *extra: str, arm: str | None = "sea", root: Path | None = None):
        argv = [stage, *overrides_for(root or tmp_path / "out", *extra)]
        if arm:
            argv += ["--arm", arm]
        capsys.readouterr()
        status = sea_main(argv)
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sea ")]
        return status, err

    return run


def run_dir(root: Path, stage: str, arm: str = "sea") -> Path:
    return root / stage / "seed0" / arm


def mlflow_runs(root: Path) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{(root / 'mlflow').resolve()}/mlflow.db")
    return client.search_runs([client.get_experiment_by_name("sea").experiment_id])


# ---- row: align.train.lr=1e30 -----------------------------------------------------------------------


def test_diverging_training_stops_naming_the_step(cli, tmp_path: Path):
    root = tmp_path / "out"
    status, err = cli(
        "align", "align.train.lr=1e30", "tracking.enabled=true", "tracking.register_models=false"
    )
    assert status == 1
    assert len(err) == 1 and "non-finite" in err[0] and "optimizer step" in err[0], err
    assert "align.train.nonfinite_patience" in err[0] or "nonfinite_patience" in err[0]
    assert not (run_dir(root, "align") / SUCCESS).exists()
    (run,) = mlflow_runs(root)
    assert run.info.status == "FAILED"


def test_patience_tolerates_a_rare_nonfinite_step(stage_cfg, monkeypatch: pytest.MonkeyPatch):
    """One inf gradient norm with patience 1: the update is skipped and the run finishes."""
    import torch

    import sea.training.loop as loop
    from sea.stages.align import STAGE

    calls = []
    original = loop._nonfinite

    def once_inf(loss, grad_norm, *args):  # noqa: ANN001, ANN002
        calls.append(1)
        return original(loss, torch.tensor(float("inf")) if len(calls) == 2 else grad_norm, *args)

    monkeypatch.setattr(loop, "_nonfinite", once_inf)
    metrics = STAGE.run(stage_cfg("align.train.nonfinite_patience=1"), "baseline")
    assert metrics["steps"] == 4
    calls.clear()
    with pytest.raises(
        loop.NonFiniteError, match=r"grad_norm=inf at optimizer step 2 \(1 in a row, patience 0\)"
    ):
        STAGE.run(stage_cfg(root=stage_cfg().paths.root + "/b"), "baseline")


def test_evaluate_refuses_a_model_with_nonfinite_training_metrics(stage_cfg, tmp_path: Path):
    from sea.errors import SeaError
    from sea.stages.evaluate import model_folder

    folder = tmp_path / "instruct" / "seed0" / "sea"
    folder.mkdir(parents=True)
    (folder / "sea_mllm.json").write_text("{}")
    (folder / SUCCESS).write_text(json.dumps({"config_hash": "x", "metrics": {"loss": float("nan")}}))
    with pytest.raises(SeaError, match=r"non-finite metrics \{'loss': nan\}; rerun `instruct`"):
        model_folder(str(tmp_path / "instruct"), "seed0/sea", "sea")
