"""Tests that pin the comparison's wiring (issue 12, item 9): each fails on a bug planted once that no
other test caught: stage 2 not starting from the arm's stage-1 adapter, lambda ignored, a config key or
input a training stage reads missing from its declared params/deps (registry and dvc.yaml), the
`missing_labels: error` check disabled. (POPE pairing and VQAv2's rule: tests/eval/test_eval_wiring.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from sea.errors import SeaError

REPO = Path(__file__).resolve().parents[2]


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_instruct_starts_from_the_saved_stage1_adapter_bit_for_bit(stage_cfg, monkeypatch):
    from safetensors.torch import load_file

    import sea.training.loop as loop
    from sea.models.adapter import KEY_PREFIX
    from sea.stages.align import STAGE as ALIGN
    from sea.stages.instruct import STAGE

    cfg = stage_cfg("align.train.max_steps=1", "instruct.train.max_steps=1")
    ALIGN.run(cfg, "sea")
    saved = load_file(str(Path(cfg.paths.align) / "seed0" / "sea" / "adapter.safetensors"))
    seen = {}
    original = loop.train

    def train(module, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        seen.update({k: v.detach().clone() for k, v in module.mllm.adapter.state_dict().items()})
        return original(module, *args, **kwargs)

    monkeypatch.setattr(loop, "train", train)
    STAGE.run(cfg, "sea")
    assert seen and {f"{KEY_PREFIX}{k}" for k in seen} == set(saved)
    for key, value in seen.items():
        assert torch.equal(value.float(), saved[f"{KEY_PREFIX}{key}"].float()), key


def test_lambda_weights_the_sea_loss(stage_cfg):
    from sea.stages.align import STAGE

    cfg = stage_cfg("align.train.max_steps=2", "align.sea.weight=0.5")
    STAGE.run(cfg, "sea")
    rows = read_log(Path(cfg.paths.align) / "seed0" / "sea" / "train_log.jsonl")
    for row in rows:
        assert row["loss_sea"] > 0
        assert row["loss"] == pytest.approx(row["loss_lm"] + 0.5 * row["loss_sea"], rel=1e-5)
        assert row["loss"] != pytest.approx(row["loss_lm"] + row["loss_sea"], rel=1e-3)


def test_missing_labels_error_names_the_images(tiny_world):
    from sea.training.data import ConversationDataset

    samples = [{"id": "p000", "conversations": []}, {"id": "p001", "conversations": []}]
    kwargs = {"labels": {"p000"}, "num_patches": 16}
    with pytest.raises(SeaError, match=r"1 of 2 training images have no stored labels.*'p001'"):
        ConversationDataset(samples, None, "plain", None, None, **kwargs)
    ConversationDataset(samples, None, "plain", None, None, missing_labels="skip", **kwargs)


# ---- drift: what a stage reads is what it declares --------------------------------------------------

ITEM = {"item.seed": "0", "item.arm": "sea"}  # the matrix item of dvc.yaml's per-arm stages
# Keys that do not change a training run's result (where it writes, how it is resumed and logged).
NEUTRAL = ("seed", "arms", "hardware", "tracking", "paths.root", "paths.metrics")


def covered(key: str, declared: list[str]) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared)


def undeclared_reads(cfg, stage, reads: set[str]) -> list[str]:
    """Keys read that are neither declared (params, deps) nor neutral; a section read counts as reading
    each of its leaves."""
    declared = [*stage.params, *stage.deps]
    # checkpoints, logging and the diagnostics curves during training do not change a stage's outputs
    neutral = [*NEUTRAL, stage.out, *(f"{stage.name}.{k}" for k in ("checkpoint", "log", "diagnostics"))]
    bad = []
    for key in sorted(reads):
        if covered(key, declared) or covered(key, neutral):
            continue
        value = OmegaConf.select(cfg, key)
        leaves = [f"{key}.{k}" for k in OmegaConf.to_container(value)] if OmegaConf.is_dict(value) else [key]
        bad += [leaf for leaf in leaves if not (covered(leaf, declared) or covered(leaf, neutral))]
    return bad


def test_training_stages_declare_every_key_and_input_they_read(stage_cfg, monkeypatch):
    from sea.stages import get_stage

    reads: set[str] = set()
    original = OmegaConf.select

    def select(cfg, key, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        reads.add(key)
        return original(cfg, key, *args, **kwargs)

    cfg = stage_cfg("align.train.max_steps=1", "instruct.train.max_steps=1")
    for name in ("align", "instruct"):
        stage = get_stage(name)
        reads.clear()
        with monkeypatch.context() as m:
            m.setattr(OmegaConf, "select", staticmethod(select))
            stage.run(cfg, "sea")
        assert reads, name
        assert undeclared_reads(cfg, stage, reads) == [], f"{name} reads undeclared keys"

        # dvc.yaml: every declared input path is among the stage's deps there
        dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][name]
        dvc_deps = {
            re.sub(r"\$\{([^}]+)\}", lambda m: ITEM.get(m[1]) or str(OmegaConf.select(cfg, m[1])), d)
            for d in dvc["deps"]
        }
        missing = [str(p) for p in stage.dep_paths(cfg, "sea") if str(p) not in dvc_deps]
        assert missing == [], f"{name}: inputs missing from dvc.yaml deps"


def test_the_drift_check_catches_a_dropped_dep(stage_cfg):
    """The planted bug: `align.labels` dropped from align's deps."""
    import dataclasses

    from sea.stages.align import STAGE

    cfg = stage_cfg()
    bad = dataclasses.replace(STAGE, deps=tuple(d for d in STAGE.deps if d != "align.labels"))
    assert undeclared_reads(cfg, bad, {"align"}) == ["align.labels"]
    assert undeclared_reads(cfg, STAGE, {"align", "align.checkpoint.dir", "paths.prepared"}) == []
