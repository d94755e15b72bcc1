"""Datasets and models go to the DVC remote and come back: in a temp copy of the repo, reproduce the
data stages of the tiny experiment, `dvc push`, delete the outputs and the cache, `dvc pull`; the files
are back bit for bit and `dvc status` is clean."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_dvc import temp_repo

from sea.config import compose
from sea.stages import get_stage
from sea.utils.io import sha256_file

REPO = Path(__file__).resolve().parent.parent
STAGES = ("world", "prepare")  # the cheap stages: a dataset and its prepared manifests


def test_default_remote_is_a_local_folder_outside_the_repo():
    from dvc.config import Config

    config = Config(dvc_dir=str(REPO / ".dvc"), validate=False).load_one("repo")
    remote = config["core"]["remote"]
    url = config["remote"][remote]["url"]
    assert "://" not in url, f"the default remote {remote} is a local folder, not {url}"
    path = Path(url).expanduser()
    assert path.is_absolute() and not path.resolve().is_relative_to(REPO.resolve()), url


def digests(repo: Path, cfg) -> dict[str, str]:
    """sha256 of every file of the stages' outputs (their folders and metrics files)."""
    files = []
    for name in STAGES:
        stage = get_stage(name)
        files += [p for p in (repo / stage.out_dir(cfg)).rglob("*") if p.is_file()]
        files.append(repo / stage.metrics_file(cfg))
    return {str(p.relative_to(repo)): sha256_file(p) for p in sorted(files)}


@pytest.mark.slow
def test_push_then_pull_into_an_empty_workspace_restores_every_output(tmp_path: Path):
    repo = tmp_path / "repo"
    cfg = compose(["experiment=tiny", "tracking=none"])
    dvc = temp_repo(repo, cfg)  # with the default pipeline's dvc.lock: push and pull name their stages
    remote = tmp_path / "remote"
    dvc("remote", "modify", "--local", "local", "url", str(remote))  # as a user points it elsewhere
    dvc("repro", *STAGES)
    before = digests(repo, cfg)
    assert len(before) > 10, before

    pushed = dvc("push", *STAGES).stdout
    assert "pushed" in pushed and any(remote.rglob("*")), pushed

    shutil.rmtree(repo / cfg.paths.root)
    shutil.rmtree(repo / ".dvc" / "cache")
    assert "deleted" in dvc("status", *STAGES).stdout

    dvc("pull", *STAGES)
    assert digests(repo, cfg) == before, "dvc pull restores every output bit for bit"
    assert "Data and pipelines are up to date." in dvc("status", *STAGES).stdout
