"""Two CPU processes (DDP over gloo) against one process with the same global batch: the first step's
loss and gradients agree (rtol 1e-5, atol 1e-7: fp32, only the reduction order differs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ddp_worker.py")


def run_worker(tmp_path: Path, name: str, overrides: list[str], processes: int) -> dict:
    out = tmp_path / f"{name}.pt"
    spec = tmp_path / f"{name}.json"
    spec.write_text(json.dumps({"overrides": overrides, "out": str(out)}), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if processes > 1:
        accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
        cmd = [
            accelerate,
            "launch",
            "--config_file",
            str(REPO / "conf/hardware/accelerate/cpu_ddp.yaml"),
            "--num_processes",
            str(processes),
            "--main_process_port",
            "29517",
            str(WORKER),
            str(spec),
        ]
        env["ACCELERATE_USE_CPU"] = "1"
    else:
        cmd = [sys.executable, str(WORKER), str(spec)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return torch.load(out)


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one_process(overrides_for, tmp_path: Path):
    def overrides(root: str, *extra: str) -> list[str]:
        return overrides_for(tmp_path / root, "align.train.max_steps=1", *extra)

    single = run_worker(tmp_path, "single", overrides("single"), 1)
    # two steps with a checkpoint after the first: also exercises `save_state` under DDP
    # per-process contrastive batches (`gather: false`): the same as one process accumulating two
    ddp_overrides = overrides(
        "ddp",
        "hardware=cpu_ddp",
        "align.train.max_steps=2",
        "align.checkpoint.every=1",
        "align.sea.gather=false",
    )
    ddp = run_worker(tmp_path, "ddp", ddp_overrides, 2)
    assert single["world_size"] == 1 and ddp["world_size"] == 2 and ddp["checkpointed"]
    for key in ("loss", "loss_lm", "loss_sea", "sea/pairs"):
        assert ddp["row"][key] == pytest.approx(single["row"][key], rel=1e-5), key
    assert set(ddp["grads"]) == set(single["grads"])
    for name, grad in single["grads"].items():
        torch.testing.assert_close(ddp["grads"][name], grad, rtol=1e-5, atol=1e-7, msg=name)

    # the gathered contrastive batch over 2 processes x 2 images = one process's batch of 4 images
    wide = run_worker(tmp_path, "wide", overrides("wide", "align.train.per_device_batch_size=4"), 1)
    # the default with two processes: gathered
    gathered = run_worker(tmp_path, "gathered", overrides("gathered", "hardware=cpu_ddp"), 2)
    assert gathered["row"]["loss_sea"] == pytest.approx(wide["row"]["loss_sea"], rel=1e-5)
    assert gathered["row"]["sea/pairs"] == wide["row"]["sea/pairs"]
    assert gathered["row"]["sea/pairs_per_step"] == wide["row"]["sea/pairs_per_step"]
    torch.testing.assert_close(
        gathered["grads"]["sea.logit_scale"], wide["grads"]["sea.logit_scale"], rtol=1e-5, atol=1e-7
    )


def test_launch_command_follows_the_hardware_preset(stage_cfg, tmp_path: Path, monkeypatch):
    from sea.launch import launch_command, needs_launcher
    from sea.stages import get_stage

    ddp = stage_cfg("hardware=cpu_ddp")
    cmd = launch_command("align", ddp, tmp_path / "p.yaml", "sea")
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1] == "conf/hardware/accelerate/cpu_ddp.yaml"
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[-6:] == ["sea", "align", "--params", str(tmp_path / "p.yaml"), "--arm", "sea"]
    assert needs_launcher(ddp, get_stage("align")) and not needs_launcher(ddp, get_stage("prepare"))
    assert not needs_launcher(stage_cfg(), get_stage("align")), "one process: in-process"
    assert launch_command("align", stage_cfg(), tmp_path / "p.yaml", "sea") == [
        sys.executable,
        *("-m", "sea", "align", "--params", str(tmp_path / "p.yaml"), "--arm", "sea"),
    ], "one process of its own (the flow's concurrent runs): python -m sea, no launcher"
    monkeypatch.setenv("SEA_LAUNCHED", "1")
    assert not needs_launcher(ddp, get_stage("align")), "a launched process never launches again"


@pytest.mark.slow
def test_cli_launches_a_multi_process_stage(overrides_for, stage_cfg, tmp_path: Path):
    """`python -m sea align` with hardware=cpu_ddp runs under `accelerate launch` (2 CPU processes)."""
    from sea.stages import get_stage

    extra = ("hardware=cpu_ddp", "align.train.max_steps=2", "hardware.num_processes=2")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "sea", "align", "--arm", "sea", *overrides_for(tmp_path / "run", *extra)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "launching:" in proc.stderr and "accelerate.commands.launch" in proc.stderr
    assert proc.stderr.count("launching:") == 1, "the launched ranks run the stage, not another launch"
    assert "x 2 processes" in proc.stderr, proc.stderr[-3000:]
    cfg = stage_cfg(*extra, root=tmp_path / "run")
    metrics = json.loads(get_stage("align").metrics_file(cfg, "sea").read_text())
    assert metrics["steps"] == 2
    assert (Path(cfg.paths.align) / "seed0" / "sea" / "adapter.safetensors").is_file()
