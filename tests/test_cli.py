"""`python -m sea`: help, clear errors for unknown stages and bad overrides, metrics written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sea.__main__ import main
from sea.stages import STAGE_NAMES, get_stage

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sea", *args], capture_output=True, text=True, cwd=REPO)


def test_help_lists_every_stage_with_one_line():
    out = run_cli("--help")
    assert out.returncode == 0
    for name in STAGE_NAMES:
        assert f"  {name}" in out.stdout and get_stage(name).help in out.stdout


def test_help_does_not_import_the_heavy_stack():
    heavy = ("torch", "mlflow", "prefect", "open_clip", "transformers")
    code = (
        "import sys; from sea.__main__ import build_parser; build_parser().format_help(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_unknown_stage_is_a_clear_error():
    out = run_cli("trian")
    assert out.returncode == 2
    assert "unknown stage 'trian'" in out.stderr and "world" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_override_is_a_clear_error(tmp_path: Path):
    out = run_cli("world", "data=nope", f"paths.root={tmp_path}")
    assert out.returncode == 2
    assert "bad config" in out.stderr and "nope" in out.stderr
    assert "Traceback" not in out.stderr
    assert not list(tmp_path.iterdir())


def test_stage_writes_metrics_json(tiny_overrides: list[str], tiny_cfg, capsys):
    assert main(["world", *tiny_overrides, "tracking=none"]) == 0
    written = json.loads((Path(tiny_cfg.paths.metrics) / "world.json").read_text())
    # One quiet line by default (what `dvc repro` shows), the metrics themselves with --json.
    assert capsys.readouterr().out.strip() == (
        f"sea world: done, {len(written)} metrics in {Path(tiny_cfg.paths.metrics) / 'world.json'}"
    )
    assert main(["world", *tiny_overrides, "tracking=none", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == written and written
    assert (Path(tiny_cfg.paths.world) / "pretrain.json").is_file()
