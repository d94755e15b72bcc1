"""Config sections read into settings objects: every shipped composition parses (the defaults live in
conf/ only), and an unknown key is a one-line error naming it."""

from __future__ import annotations

import pytest

from sea.config import compose, select
from sea.errors import SeaError

COMPOSITIONS = [
    [],
    ["experiment=tiny"],
    ["experiment=sea_llava15_gemma2b"],
    ["experiment=sea_llava15_vicuna7b"],
    ["instruct=lora"],
    *[[f"hardware={h}"] for h in ("cpu", "cpu_ddp", "gpu1", "ddp", "fsdp", "zero2", "zero3")],
]


@pytest.mark.parametrize("overrides", COMPOSITIONS, ids=lambda o: " ".join(o) or "default")
def test_every_shipped_composition_parses(overrides: list[str]):
    from sea.backbones.clip_train import ClipSettings
    from sea.labeling.agreement import Guard
    from sea.stages.align import ProbeSettings
    from sea.stages.instruct import Lora, Tune
    from sea.training.recipe import CheckpointSettings, Hardware, LogSettings
    from sea.utils.settings import settings_from

    cfg = compose(overrides)
    Hardware.from_config(cfg)
    ClipSettings.from_config(select(cfg, "backbones.clip"))
    for stage in ("align", "instruct"):
        settings_from(CheckpointSettings, select(cfg, f"{stage}.checkpoint"), f"{stage}.checkpoint")
        settings_from(LogSettings, select(cfg, f"{stage}.log"), f"{stage}.log")
    settings_from(ProbeSettings, select(cfg, "align.diagnostics"), "align.diagnostics")
    Guard.from_config(select(cfg, "label.guard"))
    Tune_ = settings_from(Tune, select(cfg, "instruct.tune"), "instruct.tune")
    settings_from(Lora, select(cfg, "instruct.lora"), "instruct.lora")
    assert Tune_.llm == ("lora" if "instruct=lora" in overrides else "full")


def test_unknown_and_missing_keys_are_named():
    from sea.backbones.clip_train import ClipSettings
    from sea.training.recipe import Hardware

    clip = select(compose([]), "backbones.clip")
    assert ClipSettings.from_config(clip).group_size == 8  # conf's value: no default in code
    with pytest.raises(SeaError, match=r"unknown backbones.clip keys \['group_sise'\]"):
        ClipSettings.from_config({**clip, "group_sise": 4})
    with pytest.raises(SeaError, match=r"backbones.clip is missing keys \['group_size'\]"):
        ClipSettings.from_config({k: v for k, v in clip.items() if k != "group_size"})
    with pytest.raises(SeaError, match=r"unknown hardware keys \['devices'\]"):
        Hardware.from_config(compose(["+hardware.devices=2"]))
