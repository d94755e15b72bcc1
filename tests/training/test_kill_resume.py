"""Acceptance: `python -m sea align --arm sea` killed (SIGKILL) after a checkpoint, run again, ends with
the adapter of an unbroken run (CPU, deterministic; atol 1e-7)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def cli(overrides: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "sea", "align", "--arm", "sea", "--json", *overrides],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_killed_align_resumes_to_the_unbroken_result(overrides_for, stage_cfg, tmp_path: Path):
    from safetensors.torch import load_file

    from sea.stages.align import STAGE

    extra = ("align.train.max_steps=8", "align.checkpoint.every=2")
    unbroken = stage_cfg(*extra, root=tmp_path / "unbroken")
    STAGE.run(unbroken, "sea")

    overrides = overrides_for(tmp_path / "killed", *extra)
    cfg = stage_cfg(*extra, root=tmp_path / "killed")
    marker = Path(cfg.align.checkpoint.dir) / "seed0" / "sea" / "state" / "step_00000002"
    proc = cli(overrides)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:] if proc.stdout else ""
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    out = Path(cfg.paths.align) / "seed0" / "sea"
    assert not out.exists(), "a killed stage leaves no output"

    rerun = cli(overrides)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output[-3000:]
    metrics = json.JSONDecoder().raw_decode(output[output.rindex("\n{\n") + 1 :])[0]["sea"]
    assert metrics["resumed_from"] >= 2 and metrics["steps"] == 8
    a = load_file(str(Path(unbroken.paths.align) / "seed0" / "sea" / "adapter.safetensors"))
    b = load_file(str(out / "adapter.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-7)
    assert not Path(cfg.align.checkpoint.dir).exists()
