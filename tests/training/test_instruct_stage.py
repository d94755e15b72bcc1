"""The `instruct` stage on the tiny world: full fine-tuning, LoRA (merged) and vision-tower unfreezing, each
saving a model that `SeaMLLM.load` reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sea.errors import SeaError


def states(model) -> dict[str, dict[str, torch.Tensor]]:  # noqa: ANN001
    return {
        part: {k: v.detach().float().clone() for k, v in getattr(model, part).state_dict().items()}
        for part in ("vision", "adapter", "llm")
    }


def changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_instruct_full_lora_and_vision(stage_cfg, tmp_path: Path):
    from sea.models.adapter import load_adapter
    from sea.models.mllm import SeaMLLM
    from sea.stages.align import STAGE as ALIGN
    from sea.stages.instruct import STAGE

    cfg = stage_cfg("align.train.max_steps=2")
    ALIGN.run(cfg, "sea")
    start = states(SeaMLLM.from_config(cfg))
    start["adapter"] = load_adapter(
        Path(cfg.paths.align) / "seed0" / "sea" / "adapter.safetensors"
    ).state_dict()

    metrics = STAGE.run(cfg, "sea")
    assert metrics["steps"] == 2 and metrics["loss"] > 0
    full = states(SeaMLLM.load(Path(cfg.paths.instruct) / "seed0" / "sea"))
    assert changed(start["adapter"], full["adapter"]) and changed(start["llm"], full["llm"])
    assert not changed(start["vision"], full["vision"])
    assert (Path(cfg.paths.instruct) / "seed0" / "sea" / "train_log.jsonl").is_file()
    # The transformers export beside the model: the same LM head weights, loadable by transformers.
    from transformers import LlavaForConditionalGeneration

    hf = LlavaForConditionalGeneration.from_pretrained(Path(cfg.paths.instruct) / "seed0" / "sea" / "hf")
    ours = SeaMLLM.load(Path(cfg.paths.instruct) / "seed0" / "sea")
    assert torch.equal(hf.lm_head.weight[: ours.llm.lm_head.weight.shape[0]], ours.llm.lm_head.weight)
    assert json.loads((Path(cfg.paths.instruct) / "seed0" / "sea" / "metrics.json").read_text())[
        "exported_hf"
    ]

    lora = stage_cfg(
        "align.train.max_steps=2",
        "instruct=lora",
        "instruct.lora.r=4",
        "instruct.lora.alpha=8",
        "instruct.tune.vision=true",
        "instruct.tune.vision_lr=1e-3",
        f"paths.instruct={tmp_path / 'lora'}",
    )
    assert lora.instruct.tune.llm == "lora" and lora.instruct.tune.adapter_lr == 2e-5
    assert lora.instruct.lora.r == 4
    STAGE.run(lora, "sea")
    tuned = states(SeaMLLM.load(tmp_path / "lora" / "seed0" / "sea"))
    assert set(tuned["llm"]) == set(start["llm"]), "LoRA merged: plain LLM keys"
    assert changed(start["llm"], tuned["llm"]) and changed(start["vision"], tuned["vision"])


def test_instruct_needs_the_stage1_adapter(stage_cfg):
    from sea.stages.instruct import STAGE

    with pytest.raises(SeaError, match="run `align` for it first"):
        STAGE.run(stage_cfg(), "sea")
