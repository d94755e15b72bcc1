"""The flow's command line checks its arguments before anything starts: a typo is one line on stderr,
exit status 2, in seconds, with no Prefect server started, no traceback and nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_a_typo_in_stages_is_a_quick_one_line_error_without_a_server(tmp_path: Path):
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "flows.pipeline", f"paths.root={tmp_path / 'out'}", "--stages", "aling"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "python -m flows.pipeline: error: unknown stage(s) ['aling']; stages are: "
        "world, backbones, prepare, label, align, instruct, evaluate, report"
    ]
    assert proc.stdout == "", "no server message, no flow run"
    assert seconds < 30, f"{seconds:.1f} s"  # ~3 s; a temporary server alone takes ~15 s
    assert not (tmp_path / "out").exists()


EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arms", "sea,basline"], "unknown arm(s) ['basline']; arms are: baseline, sea, sea_oracle"),
        (["--seeds", "0,x"], "--seeds takes integers, got 'x'"),
        (["--concurrency", "0"], "--concurrency must be a positive integer, got 0"),
        (["--concurrency", "two"], "--concurrency takes integers, got 'two'"),
        (
            ["experiment=nope"],
            "Could not find 'experiment/nope' (available options in 'experiment': "
            f"{', '.join(EXPERIMENTS)})",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys, args: list[str], message: str):
    from flows.pipeline import main

    assert main([f"paths.root={tmp_path / 'out'}", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and message in err, err
    assert err.startswith("python -m flows.pipeline: error: ")
    assert not (tmp_path / "out").exists()
