"""The committed dvc.lock has the structure of dvc.yaml: the same stage runs, commands, deps, params
keys and outs, so `dvc status` on a fresh clone compares like with like. Values (hashes, param values)
change with every code or config change; `make lock-dvc` records them again."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
FIX = "dvc.lock is out of step with dvc.yaml: run `make lock-dvc` and commit dvc.lock"


@pytest.fixture(scope="module")
def stages() -> dict:
    """dvc.yaml's stages as DVC resolves them (matrix expanded, `${...}` filled in from params.yaml)."""
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        return {stage.addressing: stage for stage in repo.index.stages}


@pytest.fixture(scope="module")
def lock() -> dict:
    path = REPO / "dvc.lock"
    assert path.is_file(), f"no dvc.lock: run `make lock-dvc` and commit it ({path})"
    return yaml.safe_load(path.read_text())["stages"]


def test_dvc_lock_has_every_stage_run_of_dvc_yaml(stages: dict, lock: dict):
    assert sorted(lock) == sorted(stages), FIX


def test_dvc_lock_records_each_stage_as_dvc_yaml_defines_it(stages: dict, lock: dict):
    from dvc.dependency.param import ParamsDependency

    for name, stage in stages.items():
        entry = lock[name]
        assert entry["cmd"] == stage.cmd, f"{name}: command differs. {FIX}"
        deps = sorted(d.def_path for d in stage.deps if not isinstance(d, ParamsDependency))
        assert sorted(d["path"] for d in entry.get("deps", [])) == deps, f"{name}: deps differ. {FIX}"
        # params.yaml keys: those listed under `params:` (and any that `${...}` interpolates, which
        # DVC records only for a stage that lists nothing from params.yaml).
        declared = {key for dep in stage.params for key in dep.params}
        tracked = set((stage.tracked_vars or {}).get("params.yaml", {}))
        recorded = set((entry.get("params") or {}).get("params.yaml", {}))
        assert declared <= recorded <= declared | tracked, (
            f"{name}: params differ (only in dvc.lock: {sorted(recorded - declared - tracked)}, "
            f"only in dvc.yaml: {sorted(declared - recorded)}). {FIX}"
        )
        outs = sorted(o.def_path for o in stage.outs)
        assert sorted(o["path"] for o in entry.get("outs", [])) == outs, f"{name}: outs differ. {FIX}"
        for dep in entry.get("deps", []) + entry.get("outs", []):
            assert dep.get("md5"), f"{name}: {dep['path']} has no hash in dvc.lock. {FIX}"
