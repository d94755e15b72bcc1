"""`instruct`: stage 2 (LLaVA-1.5 visual instruction tuning): the model of one training run (arm, seed).

Starts from the run's stage-1 adapter (`<instruct.adapters>/seed<seed>/<arm>/adapter.safetensors`) and
trains on the
instruction data (`data.instruct`, mix665K format, text-only samples included) with the LLM's
conversation template (`instruct.template`, vicuna_v1 for Vicuna). What trains (`instruct.tune`):
the LLM (`full`, `lora` via peft with LLaVA's recipe in `instruct=lora`, or `frozen`), the adapter
(own lr optional), and optionally the vision tower with its own lr. No SEA loss here (the paper uses it
in stage 1 only).

Writes `<paths.instruct>/seed<seed>/<arm>/`: the model (`SeaMLLM.save_pretrained`: loadable with
`SeaMLLM.load`, LoRA merged), `train_log.jsonl` and `metrics.json`. Checkpoints as in `align`
(`instruct.checkpoint`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.errors import SeaError
from sea.integrity import check_input
from sea.layout import adapter_path as stage1_adapter
from sea.stages.base import Stage
from sea.tracking import Tracker
from sea.training.recipe import TrainingParts, TrainingRecipe, is_sharded, load_training_samples, train_stage
from sea.utils.settings import require, settings_from

log = logging.getLogger(__name__)
HF_FOLDER = "hf"  # the transformers export inside an instruct output

LLM_TUNING = ("full", "lora", "frozen")


@dataclass(frozen=True)
class Tune:
    """`instruct.tune`: what trains. The LLM (`full`, `lora` or `frozen`), the adapter (with its own lr,
    null: `train.lr`) and the vision tower (with its own lr)."""

    llm: str
    adapter: bool
    adapter_lr: float | None
    vision: bool
    vision_lr: float | None

    def __post_init__(self) -> None:
        require(self.llm in LLM_TUNING, "instruct.tune.llm", f"one of {LLM_TUNING}", self.llm)


@dataclass(frozen=True)
class Lora:
    """`instruct.lora`: peft's LoRA settings (LLaVA's recipe in conf/instruct/lora.yaml) and whether the
    LoRA weights are merged into the LLM before saving."""

    r: int
    alpha: int
    dropout: float
    target_modules: Any  # `all-linear` or a list of module names
    bias: str
    merge: bool


def apply_lora(llm: Any, lora: Lora) -> Any:
    """Wrap the LLM with peft LoRA adapters (all linear layers but the output head by default)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise SeaError("instruct.tune.llm=lora needs peft: pip install peft") from err
    targets = lora.target_modules
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
        bias=lora.bias,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(llm, config)


def save_model(
    accelerator: Any, prepared: Any, mllm: Any, out: Path, lora: Lora, dtype: Any, cfg: DictConfig
) -> None:
    """Write the trained model with `SeaMLLM.save_pretrained` (main process). Sharded models (FSDP,
    ZeRO-3) are gathered into a fresh copy first."""
    if is_sharded(accelerator):
        state = accelerator.get_state_dict(prepared)
        if not accelerator.is_main_process:
            return
        from sea.models.mllm import SeaMLLM

        fresh = SeaMLLM.from_config(cfg)
        if _is_peft(mllm.llm):
            fresh.llm = apply_lora(fresh.llm, lora)
        own = {k[len("mllm.") :]: v for k, v in state.items() if k.startswith("mllm.")}
        fresh.load_state_dict(own, strict=False)
        mllm = fresh
    elif not accelerator.is_main_process:
        return
    if _is_peft(mllm.llm) and lora.merge:
        mllm.llm = mllm.llm.merge_and_unload()
    elif _is_peft(mllm.llm):
        raise SeaError(
            "instruct.lora.merge=false is not supported yet: the saved model must load without peft"
        )
    mllm.to(dtype)
    mllm.save_pretrained(out)


def _is_peft(module: Any) -> bool:
    return hasattr(module, "merge_and_unload") and hasattr(module, "peft_config")


class InstructRecipe(TrainingRecipe):
    """Stage 2 of one arm: from its stage-1 adapter, the LLM (full, LoRA or frozen), the adapter and
    optionally the vision tower train on the instruction data."""

    stage = "instruct"

    def setup(self) -> TrainingParts:
        from sea.models.adapter import load_adapter
        from sea.models.mllm import SeaMLLM
        from sea.training.data import Collator
        from sea.training.modules import InstructModule
        from sea.training.optim import ParamGroupSpec, param_groups

        cfg, icfg, settings, arm, seed = self.cfg, self.section, self.settings, self.arm, self.seed
        tune = settings_from(Tune, icfg["tune"], "instruct.tune")
        self.lora = lora = settings_from(Lora, icfg["lora"], "instruct.lora")
        adapter_path = stage1_adapter(icfg["adapters"], seed, arm)
        if not adapter_path.is_file():
            raise SeaError(
                f"{adapter_path}: no stage-1 adapter for arm '{arm}' at seed {seed}; run `align` for it first"
            )
        check_input(adapter_path.parent, "align", [adapter_path.name])

        mllm = SeaMLLM.from_config(cfg)
        load_adapter(adapter_path, mllm.adapter)
        mllm.set_trainable(adapter=tune.adapter, llm=tune.llm == "full")
        if tune.llm == "lora":
            mllm.llm = apply_lora(mllm.llm, lora)
        if tune.vision:
            mllm.vision.unfreeze()
        if mllm.tokenizer is None or mllm.tokenizer.pad_token_id is None:
            raise SeaError("the LLM's tokenizer has no pad token")
        module = InstructModule(mllm)
        self.freeze(module, mllm)

        samples = load_training_samples(cfg, "instruct")
        dataset = self.conversations("instruct", mllm, samples)
        collator = Collator(mllm.tokenizer.pad_token_id)
        specs = [ParamGroupSpec("adapter", mllm.adapter, tune.adapter_lr)]
        if tune.vision:
            specs.append(ParamGroupSpec("vision", mllm.vision, tune.vision_lr))
        specs.append(ParamGroupSpec("llm", mllm.llm))
        groups = param_groups(specs, settings.lr, settings.weight_decay)
        self.mllm = mllm
        return TrainingParts(module, dataset, collator, groups, mllm.vision.num_tokens)

    def save(self, accelerator: Any, model: Any, out: Path, metrics: dict[str, float]) -> dict[str, Any]:
        from sea.training.loop import DTYPES

        icfg = self.section
        save_dtype = str(icfg["save_dtype"])
        if save_dtype != "auto" and save_dtype not in DTYPES:
            raise SeaError(
                f"instruct.save_dtype must be 'auto' or one of {sorted(DTYPES)}, got {save_dtype!r}"
            )
        mixed = self.hardware.mixed_precision
        dtype = self.settings.frozen_torch_dtype(mixed) if save_dtype == "auto" else DTYPES[save_dtype]
        mllm, self.mllm = self.mllm, None
        save_model(accelerator, model, mllm, out, self.lora, dtype, self.cfg)
        if icfg["export_hf"] and self.proc.is_main:
            return {"exported_hf": export_hf(out, str(icfg["template"]), str(icfg["image_aspect_ratio"]))}
        return {}


def export_hf(out: Path, template: str, image_aspect_ratio: str) -> bool:
    """`out/hf`: the saved model as a transformers LLaVA folder; False (with a warning) when it cannot map."""
    from sea.export.llava import export_llava

    try:
        export_llava(out, out / HF_FOLDER, template=template, image_aspect_ratio=image_aspect_ratio)
    except SeaError as err:
        log.warning("instruct: not exported to transformers (%s); the model itself is saved", err)
        return False
    return True


def log_model(tracker: Tracker, out: Path, name: str, tags: Mapping[str, Any]) -> str | None:
    """The transformers export `hf/` as an MLflow pyfunc model that answers questions about images
    (`tracking.log_llava_model`); a model that was not exported as its files (`SeaMLLM.load` reads them)."""
    if not (out / HF_FOLDER).is_dir():
        return tracker.log_files_model(out, name, tags)
    return tracker.log_llava_model(out / HF_FOLDER, name, example_request(), tags)


def example_request() -> dict[str, str]:
    """A question about a small image (base64 PNG): the input example of the logged model."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buf, format="PNG")
    return {"image": base64.b64encode(buf.getvalue()).decode(), "question": "What is in the image?"}


def build(cfg: DictConfig, out: Path, arm: str) -> dict:
    return train_stage(InstructRecipe, cfg, out, arm, STAGE.hash_record(cfg, arm))


STAGE = Stage(
    name="instruct",
    help="stage 2: LLaVA instruction tuning per arm from its stage-1 adapter (LLM + adapter; LoRA optional)",
    params=(
        "model",
        "data.instruct",
        "instruct.arm_overrides",
        "instruct.template",
        "instruct.image_aspect_ratio",
        "instruct.train",
        "instruct.tune",
        "instruct.lora",
        "instruct.save_dtype",
        "instruct.export_hf",
        "instruct.log.every",
    ),
    runtime=("instruct.checkpoint", "instruct.log.progress"),
    out="paths.instruct",
    build=build,
    deps=("paths.prepared", "instruct.adapters", "paths.backbones"),
    tags=("gpu",),
    per_arm=True,
    log_model=log_model,
    arm_deps=("instruct.adapters",),
)
run = STAGE.run
