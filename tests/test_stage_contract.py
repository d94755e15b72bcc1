"""The stage contract: atomic outputs, skip on same config hash, rerun on change, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sea.layout import SUCCESS
from sea.stages.base import Stage


def make_stage(calls: list[int], fail: bool = False) -> Stage:
    def build(cfg, out: Path) -> dict:
        calls.append(1)
        (out / "result.txt").write_text(f"value={cfg.job.value}")
        if fail:
            raise RuntimeError("boom")
        return {"value": cfg.job.value}

    return Stage(name="demo", help="demo", params=("job",), out="paths.demo", build=build)


def cfg_for(tmp_path: Path, value: int):
    return OmegaConf.create({"job": {"value": value}, "paths": {"demo": str(tmp_path / "demo")}})


def test_run_writes_outputs_and_skips_when_config_unchanged(tmp_path: Path):
    calls: list[int] = []
    stage = make_stage(calls)
    assert stage.run(cfg_for(tmp_path, 1)) == {"value": 1}
    assert (tmp_path / "demo" / "result.txt").read_text() == "value=1"
    assert (tmp_path / "demo" / SUCCESS).is_file()
    assert stage.run(cfg_for(tmp_path, 1)) == {"value": 1}
    assert len(calls) == 1, "a finished stage with the same config hash must be skipped"
    assert stage.run(cfg_for(tmp_path, 2)) == {"value": 2}
    assert len(calls) == 2
    assert (tmp_path / "demo" / "result.txt").read_text() == "value=2"


def test_failed_run_keeps_previous_output_and_leaves_no_temp_dirs(tmp_path: Path):
    make_stage([]).run(cfg_for(tmp_path, 1))
    with pytest.raises(RuntimeError, match="boom"):
        make_stage([], fail=True).run(cfg_for(tmp_path, 2))
    assert (tmp_path / "demo" / "result.txt").read_text() == "value=1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_crashed_first_run_leaves_nothing(tmp_path: Path):
    with pytest.raises(RuntimeError):
        make_stage([], fail=True).run(cfg_for(tmp_path, 1))
    assert list(tmp_path.iterdir()) == []


def test_changed_input_file_invalidates(tmp_path: Path):
    calls: list[int] = []
    src = tmp_path / "input.txt"
    src.write_text("a")

    def build(cfg, out: Path) -> dict:
        calls.append(1)
        return {"n": len(Path(cfg.paths.src).read_text())}

    stage = Stage(name="dep", help="", params=(), out="paths.out", build=build, deps=("paths.src",))
    cfg = OmegaConf.create({"paths": {"src": str(src), "out": str(tmp_path / "o")}})
    assert stage.run(cfg) == {"n": 1}
    stage.run(cfg)
    assert len(calls) == 1
    src.write_text("abc")
    assert stage.run(cfg) == {"n": 3}
    assert len(calls) == 2


RANKS_SCRIPT = """
import sys
from omegaconf import OmegaConf
from sea.stages.base import Stage
from sea.utils.dist import process_info

def build(cfg, out):
    proc = process_info()
    (out / f"shard{proc.rank}.txt").write_text(str(proc.rank))
    proc.barrier()
    if proc.is_main:
        (out / "merged.txt").write_text(",".join(sorted(p.read_text() for p in out.glob("shard*"))))
    return {"world_size": proc.world_size}

stage = Stage(name="ranks", help="", params=(), out="paths.out", build=build)
metrics = stage.run(OmegaConf.create({"paths": {"out": sys.argv[1]}}))
sys.stdout.write(f"metrics {metrics}\\n")  # one write per rank, so the two ranks' lines don't interleave
"""


def test_multi_process_run_shares_one_output_folder(tmp_path: Path):
    """Under torchrun (what `accelerate launch` runs), all ranks build into one folder, renamed once."""
    import subprocess
    import sys

    script = tmp_path / "ranks.py"
    script.write_text(RANKS_SCRIPT)
    out = tmp_path / "out" / "ranks"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script), str(out)]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("metrics {'world_size': 2}") == 2
    assert (out / "merged.txt").read_text() == "0,1"
    assert (out / SUCCESS).is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["ranks"], "no temp folders left behind"
