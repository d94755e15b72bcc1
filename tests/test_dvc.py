"""dvc.yaml agrees with the stage registry; `dvc repro` runs the stages and then has nothing to do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from import_graph import closure, source_file
from omegaconf import OmegaConf

from sea.config import HEADER, compose, to_yaml
from sea.stages import STAGE_NAMES, get_stage

REPO = Path(__file__).resolve().parent.parent
DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


ITEM = {"item.seed": "0", "item.arm": "sea"}  # one training run, to resolve the matrix stages' templates


def resolve(entry: str, cfg) -> str:
    return re.sub(
        r"\$\{([^}]+)\}", lambda m: ITEM.get(m.group(1)) or str(OmegaConf.select(cfg, m.group(1))), entry
    )


def test_dvc_stages_match_the_registry():
    cfg = compose([])
    assert list(DVC_YAML) == list(STAGE_NAMES)
    for name, spec in DVC_YAML.items():
        stage = get_stage(name)
        arm = "sea" if stage.per_arm else None
        if stage.per_arm:
            assert spec["matrix"] == {"seed": "${seeds}", "arm": "${arms}"}, name
            assert (
                spec["cmd"]
                == f"python -m sea {name} --arm ${{item.arm}} --params params.yaml seed=${{item.seed}}"
            )
        else:
            assert "matrix" not in spec and "foreach" not in spec, name
            assert spec["cmd"] == f"python -m sea {name} --params params.yaml"
        assert spec["params"] == list(stage.params), name
        [out] = spec["outs"]
        assert out.startswith(f"${{{stage.out}}}"), name
        assert resolve(out, cfg) == str(stage.out_dir(cfg, arm)), name
        [metrics] = spec["metrics"]  # a plain path: cached like the outputs (dvc push / pull carry it)
        assert resolve(metrics, cfg) == str(stage.metrics_file(cfg, arm)), name
        assert f"sea/stages/{name}.py" in spec["deps"]


def test_dvc_dag_order_matches_the_registry():
    """Each stage's deps are produced by stages that come earlier in STAGE_NAMES."""
    cfg = compose([])
    outs = {name: resolve(spec["outs"][0], cfg) for name, spec in DVC_YAML.items()}
    for i, (name, spec) in enumerate(DVC_YAML.items()):
        for dep in (resolve(d, cfg) for d in spec.get("deps", [])):
            producers = [
                s
                for s, out in outs.items()
                if dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")
            ]
            for producer in producers:
                assert STAGE_NAMES.index(producer) < i, f"{name} depends on later stage {producer}"


# Imported by every stage module but not what a stage computes: the package marker and the registry.
NOT_CODE_DEPS = ("sea/__init__.py", "sea/stages/__init__.py")


def holds_code(file: str) -> bool:
    """Not one of NOT_CODE_DEPS nor empty (an empty package marker: DVC warns about an empty dep)."""
    return file not in NOT_CODE_DEPS and (REPO / file).stat().st_size > 0


def test_dvc_code_deps_cover_each_stage_imports():
    """Each stage's code deps cover every `sea` file its module imports, directly or not (also the
    imports inside functions), so `dvc repro` reruns a stage when code it runs changes, and no more."""
    for name, spec in DVC_YAML.items():
        deps = [d.rstrip("/") for d in spec["deps"] if d.startswith("sea")]
        files = sorted(source_file(m) for m in closure(f"sea.stages.{name}"))
        missing = [
            f for f in files if holds_code(f) and not any(f == d or f.startswith(d + "/") for d in deps)
        ]
        assert not missing, f"dvc.yaml stage {name}: deps leave out {missing}"
        unused = [d for d in deps if not any(f == d or f.startswith(d + "/") for f in files)]
        assert not unused, f"dvc.yaml stage {name}: deps {unused} hold no code the stage imports"
        assert all((REPO / d).exists() for d in deps), (
            f"dvc.yaml stage {name}: a dep in {deps} does not exist"
        )
        broad = [d for d in deps if (REPO / d).is_dir() and not narrow(d, files)]
        assert not broad, f"dvc.yaml stage {name}: the stage imports under half of {broad}: list its files"
        empty = [d for d in deps if (REPO / d).is_file() and not holds_code(d)]
        assert not empty, f"dvc.yaml stage {name}: deps {empty} are empty (DVC warns on every run)"


def narrow(folder: str, files: list[str]) -> bool:
    """A folder is a narrow enough code dep when the stage imports at least half of its modules (a change
    to the rest would rerun the stage for nothing)."""
    modules = [p.relative_to(REPO).as_posix() for p in sorted((REPO / folder).rglob("*.py"))]
    return 2 * sum(m in files for m in modules) >= len(modules)


def test_a_folder_dep_is_narrow_only_when_the_stage_imports_most_of_it():
    assert narrow("sea/eval", [f"sea/eval/{n}.py" for n in ("__init__", "answers", "batch_generate")]) is False
    assert narrow("sea/export", ["sea/export/__init__.py", "sea/export/chat.py"]) is True


def copy_repo(dst: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dst / rel)


def stage_runs(cfg) -> list[tuple[str, str, str | None]]:
    """(DVC stage name, registry name, arm) of every stage run of the default composition `cfg`."""
    out = []
    for name in STAGE_NAMES:
        if get_stage(name).per_arm:
            out += [(f"{name}@{seed}-{arm}", name, arm) for seed in cfg.seeds for arm in cfg.arms]
        else:
            out.append((name, name, None))
    return out


def dvc_env() -> dict[str, str]:
    """The environment of a `dvc` command: this venv's executables first, no analytics."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
    }


def temp_repo(repo: Path, cfg) -> Callable[..., subprocess.CompletedProcess]:
    """A git repo at `repo` with this repo's files and `cfg` as params.yaml (committed); returns a
    runner of `dvc` commands there that fails the test on a non-zero exit."""
    copy_repo(repo)
    (repo / "params.yaml").write_text(HEADER + to_yaml(cfg))
    env = dvc_env()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], [*git, "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env)

    def dvc(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["dvc", *args], cwd=repo, capture_output=True, text=True, env=env)
        assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        return done

    return dvc


@pytest.mark.slow
def test_dvc_repro_runs_every_stage_then_nothing(tmp_path: Path):
    repo = tmp_path / "repo"
    cfg = compose(["experiment=tiny"])
    dvc = temp_repo(repo, cfg)

    first = dvc("repro")
    for dvc_name, name, arm in stage_runs(cfg):
        assert f"Running stage '{dvc_name}'" in first.stdout, dvc_name
        assert (repo / get_stage(name).metrics_file(cfg, arm)).is_file(), dvc_name
    assert (repo / "dvc.lock").is_file() and (repo / cfg.paths.report / "report.md").is_file()
    assert "sea align[sea]: done" in first.stdout and '"steps":' not in first.stdout, "one line per stage run"

    second = dvc("repro")
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout

    plots = dvc("plots", "show", "--json").stdout
    assert "stage-1 LM loss" in plots and "baseline_loss_lm" in plots

    # `dvc exp run -S` composes conf/ through DVC's Hydra integration and reruns what changed:
    # a new lambda retrains the training runs, not the data stages.
    exp = dvc("exp", "run", "-S", "experiment=tiny", "-S", "align.sea.weight=0.5")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["align"]["sea"]["weight"] == 0.5 and params["data"]["world"]["n_pretrain"] == 48
    assert "Running stage 'align@0-sea'" in exp.stdout and "Running stage 'report'" in exp.stdout
    for data_stage in ("world", "backbones", "prepare", "label"):
        assert f"Running stage '{data_stage}'" not in exp.stdout, data_stage
    shown = dvc("exp", "show", "--json").stdout
    assert "gain/average" in shown or "pope/f1" in shown
