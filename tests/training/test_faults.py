"""Fault injection on the tiny experiment (issue 12): one test per row of the issue's table. Each
asserts the exit status, a one-line message naming the file or key, no `_SUCCESS.json` where the run
failed, and that nothing finished is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sea.__main__ import main as sea_main
from sea.layout import SUCCESS


@pytest.fixture
def cli(overrides_for, tmp_path: Path, capsys: pytest.CaptureFixture):
    """`cli(stage, *overrides, arm=, root=)` -> (exit status, stderr lines of `python -m sea`, in-process)."""

    def run(stage: str, *extra: str, arm: str | None = "sea", root: Path | None = None):
        argv = [stage, *overrides_for(root or tmp_path / "out", *extra)]
        if arm:
            argv += ["--arm", arm]
        capsys.readouterr()
        status = sea_main(argv)
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sea")]
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


# ---- rows: bad values are one-line errors before work starts ----------------------------------------


@pytest.mark.parametrize(
    ("stage", "override", "message"),
    [
        ("align", "align.train.lr=abc", "align.train.lr must be a number, got 'abc'"),
        ("prepare", "data.validation.on_error=ignore", "data.validation.on_error must be 'fail' or 'skip'"),
        (
            "align",
            "align.train.per_device_batch_size=-4",
            "align.train.per_device_batch_size must be a positive integer, got -4",
        ),
        (
            "instruct",
            "instruct.train.global_batch_size=0",
            "instruct.train.global_batch_size must be a positive",
        ),
        ("align", "align.sea.window=two", "align.sea.window must be an integer, got 'two'"),
    ],
)
def test_bad_values_are_one_line_errors_before_work(cli, tmp_path: Path, stage, override, message):
    status, err = cli(stage, override, arm=None if stage == "prepare" else "sea")
    assert status == 2
    assert err == [f"sea: bad config: {message}"] or (len(err) == 1 and message in err[0]), err
    assert not (tmp_path / "out").exists(), "nothing ran"


@pytest.mark.parametrize("bad", ["seeds=[]", "arms=[]"])
def test_flow_checks_seeds_and_arms_before_any_stage(tmp_path: Path, capsys, bad: str):
    from flows.pipeline import main

    status = main(["experiment=tiny", "tracking=none", f"paths.root={tmp_path / 'out'}", bad])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and f"{bad[:4]}" in err[0] and "non-empty" in err[0], err
    assert not (tmp_path / "out").exists()
    assert main(["experiment=tiny", f"paths.root={tmp_path / 'out'}", "--seeds", ""]) == 2
    assert "--seeds is empty" in capsys.readouterr().err


def test_prepare_flags_long_samples_escaping_images_and_empty_files(tmp_path: Path):
    from sea.data.validate import DatasetError, validate_conversations, validate_questions

    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"x")
    human = {"from": "human", "value": "<image>\nDescribe."}
    rows = [
        {"id": "ok", "image": "a.png", "conversations": [human, {"from": "gpt", "value": "a cat"}]},
        {"id": "long", "image": "a.png", "conversations": [human, {"from": "gpt", "value": "x" * 200_000}]},
        {"id": "out", "image": "../secret.png", "conversations": [human, {"from": "gpt", "value": "a"}]},
    ]
    path = tmp_path / "pretrain.json"
    path.write_text(json.dumps(rows))
    result = validate_conversations(path, images, schema="pretrain", on_error="skip")
    assert [s["id"] for s in result.samples] == ["ok"]
    assert result.skipped["too_long"] == 1 and result.skipped["image_outside_folder"] == 1
    reasons = {p.kind: p.reason for p in result.problems}
    assert "200017 characters" in reasons["too_long"]
    assert "'../secret.png' leaves the image folder" in reasons["image_outside_folder"]

    empty = tmp_path / "questions.jsonl"
    empty.write_text("")
    with pytest.raises(DatasetError, match=r"questions\.jsonl: whole file: the file holds no samples"):
        validate_questions(empty, images, on_error="skip")


def test_outputs_are_group_readable(tmp_path: Path):
    import os
    import stat

    from sea.utils.io import atomic_dir, atomic_write_json

    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "f.txt").write_text("x")
        written = atomic_write_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE(written.stat().st_mode) == 0o644


# ---- rows: damaged outputs ----------------------------------------------------------------------------


def finished_align(cli, root: Path, arm: str = "sea") -> Path:
    status, err = cli("align", "align.train.max_steps=2", arm=arm, root=root)
    assert status == 0, err
    return run_dir(root, "align", arm)


def test_overwritten_adapter_reruns_align_and_instruct_names_it(cli, tmp_path: Path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    root = tmp_path / "out"
    adapter = finished_align(cli, root) / "adapter.safetensors"
    intact = {k: v.clone() for k, v in load_file(str(adapter)).items()}  # not the mmapped file
    damaged = bytearray(adapter.read_bytes())
    damaged[-100:-36] = b"\xff" * 64
    adapter.write_bytes(bytes(damaged))

    status, err = cli("instruct", "align.train.max_steps=2", root=root)
    assert status == 1
    assert err == [
        f"sea instruct: error: damaged output of stage `align`: {adapter} does not match its recorded "
        "sha256; rerun `align` (python -m sea align ...)"
    ]
    assert not run_dir(root, "instruct").exists()

    monkeypatch.setenv("SEA_VERIFY", "hash")  # the skip check hashes on request: align runs again
    assert cli("align", "align.train.max_steps=2", root=root)[0] == 0
    rerun = load_file(str(adapter))
    assert rerun.keys() == intact.keys()
    for key in intact:  # trained again (the same run up to float summation order)
        torch.testing.assert_close(rerun[key], intact[key], rtol=0, atol=1e-6)


def test_truncated_adapter_is_named_and_reruns(cli, tmp_path: Path):
    from sea.stages.align import STAGE

    root = tmp_path / "out"
    adapter = finished_align(cli, root) / "adapter.safetensors"
    size = adapter.stat().st_size
    adapter.write_bytes(adapter.read_bytes()[:100])
    status, err = cli("instruct", "align.train.max_steps=2", root=root)
    assert status == 1 and len(err) == 1
    assert f"{adapter} has 100 bytes, {size} recorded; rerun `align`" in err[0]
    assert cli("align", "align.train.max_steps=2", root=root)[0] == 0, "the size check always runs"
    assert adapter.stat().st_size == size
    assert (run_dir(root, "align") / SUCCESS).is_file() and STAGE


def test_deleted_label_shard_is_named_before_training(cli, tiny_world, tmp_path: Path):
    import shutil

    from sea.stages import get_stage

    labels = tmp_path / "labels"
    shutil.copytree(tiny_world["labels"], labels)
    (labels / SUCCESS).unlink()
    get_stage("label").write_success(labels, "fixture", {})
    shard = sorted((labels / "shards").iterdir())[0]
    shard.unlink()
    status, err = cli("align", f"paths.labels={labels}", "align.train.max_steps=2")
    assert status == 1
    assert err == [
        f"sea align: error: damaged output of stage `label`: {shard} is missing; rerun `label` "
        "(python -m sea label ...)"
    ]
    assert not (run_dir(tmp_path / "out", "align") / SUCCESS).exists()


def test_a_damaged_output_is_not_skipped(tmp_path: Path, caplog):
    from sea.stages.base import Stage

    def build(cfg, out):  # noqa: ANN001
        (out / "data.bin").write_bytes(b"x" * 10)
        return {"n": 1}

    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"out": str(tmp_path / "s")})
    stage = Stage(name="s", help="", params=(), out="out", build=build)
    stage.run(cfg)
    assert stage.stored_metrics(cfg) == {"n": 1}
    (tmp_path / "s" / "data.bin").unlink()
    assert stage.stored_metrics(cfg) is None
    assert "data.bin is missing" in caplog.text
    stage.run(cfg)
    assert (tmp_path / "s" / "data.bin").read_bytes() == b"x" * 10


# ---- row: latest checkpoint truncated -----------------------------------------------------------------


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(
    stage_cfg, tmp_path: Path, monkeypatch, caplog
):
    import torch
    from safetensors.torch import load_file

    from sea.stages.align import STAGE
    from tests.training.test_align_stage import CrashAfterCheckpoint, crash_after

    extra = ("align.checkpoint.every=1", "align.checkpoint.keep=2")
    unbroken = stage_cfg(*extra, root=tmp_path / "a")
    STAGE.run(unbroken, "sea")
    cfg = stage_cfg(*extra, root=tmp_path / "b")
    with monkeypatch.context() as m:
        crash_after(m, "sea", 3)
        with pytest.raises(CrashAfterCheckpoint):
            STAGE.run(cfg, "sea")
    state = Path(cfg.align.checkpoint.dir) / "seed0" / "sea" / "state"
    assert sorted(p.name for p in state.glob("step_*")) == ["step_00000002", "step_00000003"]
    model = state / "step_00000003" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:50])

    metrics = STAGE.run(cfg, "sea")
    assert metrics["resumed_from"] == 2
    assert "step_00000003 is damaged" in caplog.text and "trying the previous one" in caplog.text
    a = load_file(str(run_dir(tmp_path / "a", "align") / "adapter.safetensors"))
    b = load_file(str(run_dir(tmp_path / "b", "align") / "adapter.safetensors"))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-7)


# ---- row: the same stage started twice into one root ----------------------------------------------------


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(cli, tmp_path: Path):
    import os
    import socket
    import subprocess
    import sys

    root = tmp_path / "out"
    lock = root / "align" / "seed0" / ".sea.lock"
    lock.parent.mkdir(parents=True)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        lock.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(), "since": "now"}))
        status, err = cli("align", "align.train.max_steps=2", root=root)
        other.kill()
    assert status == 1 and len(err) == 1
    assert f"align outputs {root}/align/seed0/sea is being written by another run (pid {other.pid}" in err[0]
    assert str(lock) in err[0]
    assert not (root / "checkpoints").exists(), "the second run touched nothing"

    # the owner is dead now: its lock is stale, and so are the temp folders it left
    (root / "align" / "seed0" / ".sea.tmp-crashed").mkdir()
    assert cli("align", "align.train.max_steps=2", root=root)[0] == 0
    assert not lock.exists() and sorted(os.listdir(root / "align" / "seed0")) == ["sea"]


# ---- row: a root moved to another path ------------------------------------------------------------------


def test_a_moved_root_is_still_finished_and_resumable(stage_cfg, tmp_path: Path, monkeypatch):
    import shutil

    from sea.stages.align import STAGE
    from tests.training.test_align_stage import CrashAfterCheckpoint, crash_after

    first = stage_cfg("align.train.max_steps=2", root=tmp_path / "a")
    done = STAGE.run(first, "baseline")
    with monkeypatch.context() as m:
        crash_after(m, "sea", 2)
        with pytest.raises(CrashAfterCheckpoint):
            STAGE.run(stage_cfg(root=tmp_path / "a"), "sea")
    shutil.move(tmp_path / "a", tmp_path / "b")

    moved = stage_cfg("align.train.max_steps=2", root=tmp_path / "b")
    assert STAGE.stored_metrics(moved, "baseline") == done, "still finished"
    assert STAGE.run(stage_cfg(root=tmp_path / "b"), "sea")["resumed_from"] == 2, "still resumable"


# ---- rows: tracking -------------------------------------------------------------------------------------


def test_store_outage_mid_training_loses_no_metric(cli, tmp_path: Path, monkeypatch):
    """The store fails (locked) for the first steps, then for good: training finishes, every step's
    metrics reach MLflow, the late ones through the pending file the next tracked stage sends."""
    from mlflow import MlflowClient

    original = MlflowClient.log_batch
    state = {"calls": 0, "down": True}

    def log_batch(self, run_id, metrics=(), **kwargs):  # noqa: ANN001, ANN003
        if metrics and state["down"]:
            state["calls"] += 1
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return original(self, run_id, metrics=metrics, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
    root = tmp_path / "out"
    track = ("tracking.enabled=true", "tracking.register_models=false", "align.train.max_steps=3")
    status, _ = cli("align", *track, root=root)
    assert status == 0 and state["calls"] >= 1
    assert (run_dir(root, "align") / SUCCESS).is_file()
    (pending,) = (root / "mlflow" / "pending").glob("*.jsonl")
    (run,) = mlflow_runs(root)
    assert run.info.status == "FINISHED" and pending.stem == run.info.run_id

    state["down"] = False  # the store is back: the next tracked stage sends what was kept
    assert cli("align", *track, arm="baseline", root=root)[0] == 0
    assert not pending.exists()
    history = MlflowClient(f"sqlite:///{(root / 'mlflow').resolve()}/mlflow.db").get_metric_history(
        run.info.run_id, "train/loss"
    )
    assert sorted(m.step for m in history) == [1, 2, 3]


def test_a_dead_tracking_server_is_a_one_line_error_in_seconds(tmp_path: Path, capsys):
    import time

    root = tmp_path / "out"
    start = time.monotonic()
    status = sea_main(["world", "experiment=tiny", f"paths.root={root}", "tracking.uri=http://127.0.0.1:9"])
    seconds = time.monotonic() - start
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sea")]
    assert status == 1 and seconds < 30
    assert len(err) == 1 and "tracking store http://127.0.0.1:9 is unusable" in err[0], err
    assert "tracking=none" in err[0]
    assert not (root / "world").exists()


def test_a_locked_store_before_a_stage_is_a_one_line_error(tmp_path: Path, capsys):
    import sqlite3

    root = tmp_path / "out"
    args = ["world", "experiment=tiny", f"paths.root={root}", "data.world.n_pretrain=4"]
    assert sea_main([*args, "data.world.n_instruct=4"]) == 0  # creates the store
    db = sqlite3.connect(root / "mlflow" / "mlflow.db", isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        capsys.readouterr()
        status = sea_main([*args, "data.world.n_instruct=5"])
    finally:
        db.execute("ROLLBACK")
        db.close()
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sea")]
    assert status == 1 and len(err) == 1, err
    assert f"tracking store sqlite:///{(root / 'mlflow').resolve()}/mlflow.db is unusable" in err[0]
    assert "locked" in err[0]


def test_sigterm_ends_the_stage_run_failed(tmp_path: Path, monkeypatch):
    import dataclasses
    import signal

    import sea.stages.world as world

    def build(cfg, out):  # noqa: ANN001
        (out / "half.txt").write_text("x")
        signal.raise_signal(signal.SIGTERM)
        return {}

    monkeypatch.setattr(world, "STAGE", dataclasses.replace(world.STAGE, build=build))
    root = tmp_path / "out"
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exit_:
            sea_main(["world", "experiment=tiny", f"paths.root={root}"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exit_.value.code == 128 + signal.SIGTERM
    (run,) = mlflow_runs(root)
    assert run.info.status == "FAILED"
    assert not (root / "world").exists() and [p.name for p in root.iterdir()] == ["mlflow"], "no temp left"


# ---- row: kill -9 of the flow ----------------------------------------------------------------------------


def _children(pid: int, name: str) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(fields[1]) == pid and name in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_the_temporary_prefect_server_dies_with_a_killed_flow(tmp_path: Path):
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "flows.pipeline", "experiment=tiny", "tracking=none"]
    flow = subprocess.Popen(
        [*cmd, f"paths.root={tmp_path / 'out'}", "--stages", "world"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 180
        while not (servers := _children(flow.pid, "uvicorn")) and time.monotonic() < deadline:
            assert flow.poll() is None, "the flow ended before its server was seen"
            time.sleep(0.5)
        assert servers, "no temporary server started"
    finally:
        flow.kill()
        flow.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{servers[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    alive = (
        Path(f"/proc/{servers[0]}/stat").exists()
        and ") Z" not in Path(f"/proc/{servers[0]}/stat").read_text()
    )
    assert not alive, "the temporary Prefect server outlived the killed flow"
