"""Config composition: every experiment composes, params.yaml is in sync, all writes under paths.root."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sea.config import CONF_DIR, ConfigError, compose, flatten, load_params, select, to_plain
from sea.stages import get_stage

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
GROUPS = ("paths", "data", "model", "label", "align", "instruct", "eval", "tracking", "hardware")


def test_there_is_a_tiny_experiment():
    assert "tiny" in EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(experiment: str):
    cfg = compose([f"experiment={experiment}"])
    for group in GROUPS:
        assert group in cfg, f"experiment={experiment} lacks '{group}'"
    assert set(cfg.model) >= {"vision", "llm", "adapter"}
    from flows.pipeline import default_stages

    for name in default_stages(cfg):  # every key a stage it runs declares exists in every experiment
        stage = get_stage(name)
        for key in (*stage.params, stage.out, *stage.deps):
            select(cfg, key)


def test_params_yaml_is_in_sync_with_conf():
    committed = OmegaConf.to_container(OmegaConf.load(REPO / "params.yaml"))
    assert committed == to_plain(compose([])), "params.yaml is stale: run `make params`"


def test_conf_has_no_hydra_runtime_interpolations():
    offenders = [p for p in CONF_DIR.rglob("*.yaml") if "${hydra:" in p.read_text()]
    assert not offenders


def test_paths_root_moves_every_output(tmp_path: Path):
    default = flatten(to_plain(compose([])))
    moved = flatten(to_plain(compose([f"paths.root={tmp_path}"])))
    under_root = [k for k, v in default.items() if isinstance(v, str) and v.startswith("out/")]
    assert len(under_root) > 10
    for key in under_root:
        assert moved[key].startswith(str(tmp_path)), key
    assert not [k for k, v in moved.items() if isinstance(v, str) and v.startswith("out/")]


def test_bad_overrides_raise_config_error():
    with pytest.raises(ConfigError, match="nonexistent"):
        compose(["data=nonexistent"])
    with pytest.raises(ConfigError):
        compose(["seed=="])


def test_load_params_applies_dotlist_and_refuses_group_choices(tmp_path: Path):
    cfg = load_params(REPO / "params.yaml", ["seed=7", "data.world.n_eval=3"])
    assert cfg.seed == 7 and cfg.data.world.n_eval == 3
    with pytest.raises(ConfigError, match="group"):
        load_params(REPO / "params.yaml", ["model/llm=tiny_llama"])
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_world_background_filter_names_every_world_background():
    """The world recipe's background words must cover `data.world.backgrounds` (they are listed twice)."""
    cfg = compose([])
    words = set(select(cfg, "label.background.words"))
    assert set(select(cfg, "data.world.backgrounds")) | {"background"} <= words
