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
    from sea.backbones.lm_train import LmSettings
    from sea.eval.stats import Settings as ReportSettings
    from sea.labeling.agreement import Guard
    from sea.labeling.labeler import LabelSettings
    from sea.labeling.settings import LabelSection
    from sea.stages.align import ProbeSettings
    from sea.stages.evaluate import EvalSettings
    from sea.stages.instruct import Lora, Tune
    from sea.stages.prepare import Validation, WordlistSettings
    from sea.training.recipe import CheckpointSettings, Hardware, LogSettings
    from sea.utils.settings import settings_from

    cfg = compose(overrides)
    Hardware.from_config(cfg)
    ClipSettings.from_config(select(cfg, "backbones.clip"))
    LmSettings.from_config(select(cfg, "backbones.llm"))
    LabelSection.from_config(select(cfg, "label"))
    LabelSettings.from_config(select(cfg, "label"))
    EvalSettings.from_config(select(cfg, "eval"))
    ReportSettings.from_config(select(cfg, "report"))
    Validation.from_config(select(cfg, "data.validation"))
    settings_from(WordlistSettings, select(cfg, "data.wordlist"), "data.wordlist")
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


def test_a_nested_section_names_its_unknown_key():
    from sea.labeling.settings import LabelSection
    from sea.stages.evaluate import EvalSettings

    cfg = compose([])
    with pytest.raises(SeaError, match=r"unknown eval.diagnostics keys \['tacs'\]"):
        EvalSettings.from_config(
            {**select(cfg, "eval"), "diagnostics": {**select(cfg, "eval.diagnostics"), "tacs": 3}}
        )
    with pytest.raises(SeaError, match=r"label.agreement is missing keys \['top_k'\]"):
        LabelSection.from_config({**select(cfg, "label"), "agreement": {"max_images": 5, "image_words": 3}})
    with pytest.raises(SeaError, match=r"unknown label keys \['top_m'\]"):
        LabelSection.from_config({**select(cfg, "label"), "top_m": 3})
