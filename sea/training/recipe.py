"""The training recipe of both training stages (a recipe in torchtune's sense): set up, train, save.

    recipe = AlignRecipe(cfg, arm, stage_record, proc)   # a subclass per stage (sea/stages/<stage>.py)
    recipe.run(out):
        seed_everything(seed)                             # same initialisation in every arm
        parts = recipe.setup()                            # the stage: module, dataset, collator, groups
        accelerator, result = recipe.fit(parts)           # accelerate + checkpoints -> loop.train
        recipe.save(accelerator, result.model, out, metrics)   # the stage: its trained weights
        train_log.jsonl, metrics.json

What a stage file writes is only what differs between the stages: the module, the dataset, the
collator and the parameter groups (`setup`), and how the result is saved (`save`). The run is
identified once: the checkpoint fingerprint is the record the stage's config hash is computed from
(`Stage.hash_record`), plus the number of processes and the mixed precision, which change the
trajectory but not the result's identity.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.config import select
from sea.integrity import check_input
from sea.layout import TRAIN_LOG, instance_subdir, manifest_name, manifest_path
from sea.training.arms import ArmFolder, arm_config
from sea.utils.dist import Hardware, ProcessInfo, process_info
from sea.utils.seed import seed_everything
from sea.utils.settings import settings_from


@dataclass(frozen=True)
class CheckpointSettings:
    """`<stage>.checkpoint`: where a run's resume state lives, every how many optimizer steps it is
    saved (0: never), how many are kept, and whether existing ones are discarded first."""

    dir: str
    every: int
    keep: int
    restart: bool


@dataclass(frozen=True)
class LogSettings:
    """`<stage>.log`: a step-log row every `every` optimizer steps; a progress bar."""

    every: int
    progress: bool


def load_training_samples(cfg: DictConfig, dataset: str) -> list[dict]:
    """The kept samples of `data.<dataset>` (`prepare`'s manifest order)."""
    from sea.data.llava import load_samples, read_manifest

    prepared = Path(select(cfg, "paths.prepared"))
    check_input(prepared, "prepare", [manifest_name(dataset)])
    rows = read_manifest(manifest_path(prepared, dataset))
    return load_samples(select(cfg, f"data.{dataset}.json"), rows)


def remove_checkpoints(root: Path, instance: str) -> None:
    """Remove `<root>/<instance>`, then its parents up to `root`'s parent while they are empty."""
    path = root / instance
    shutil.rmtree(path, ignore_errors=True)
    for folder in [*path.parents][: len(Path(instance).parts) + 1]:
        try:
            folder.rmdir()
        except OSError:
            return


def is_sharded(accelerator: Any) -> bool:
    """Whether the prepared model's parameters are split over processes (FSDP, ZeRO-3)."""
    kind = accelerator.distributed_type.name
    if kind == "FSDP":
        return True
    if kind == "DEEPSPEED":
        return int(accelerator.state.deepspeed_plugin.zero_stage) == 3
    return False


@dataclass
class TrainingParts:
    """What a stage trains: the module (forward(batch) -> loss, metrics), its data and parameter groups."""

    module: Any
    dataset: Any
    collator: Callable[[list], dict]
    groups: list[dict]
    tokens_per_image: int
    hooks: Any = None  # loop.TrainHooks (e.g. align's diagnostics after each step), or None


class TrainingRecipe:
    """One training run (stage, arm, seed). Subclasses set `stage` and implement `setup` and `save`."""

    stage: str = ""

    def __init__(self, cfg: DictConfig, arm: str, stage_record: dict[str, Any], proc: ProcessInfo) -> None:
        from sea.training.loop import TrainSettings

        self.cfg = cfg
        self.arm = arm
        self.proc = proc
        self.seed = int(select(cfg, "seed"))
        self.hardware = Hardware.from_config(cfg)
        # `<stage>` with the arm's overrides merged in
        self.section = arm_config(select(cfg, self.stage), arm)
        self.settings = TrainSettings.from_config(self.section["train"], f"{self.stage}.train")
        where = self.stage
        self.checkpoints = settings_from(
            CheckpointSettings, self.section["checkpoint"], f"{where}.checkpoint"
        )
        self.log = settings_from(LogSettings, self.section["log"], f"{where}.log")
        fingerprint = {
            **stage_record["params"],
            "deps": stage_record["deps"],
            "instance": stage_record.get("instance"),
            "processes": proc.world_size,
            "mixed_precision": self.hardware.mixed_precision,
        }
        self.folder = ArmFolder(self.checkpoints.dir, instance_subdir(self.seed, arm), fingerprint)

    def setup(self) -> TrainingParts:
        raise NotImplementedError

    def save(self, accelerator: Any, model: Any, out: Path, metrics: dict[str, float]) -> dict[str, Any]:
        """Write the trained weights into `out`; returns what `metrics.json` records besides the metrics."""
        raise NotImplementedError

    def conversations(self, data: str, mllm: Any, samples: list[dict], **extra: Any) -> Any:
        """`samples` of `data.<data>` as a `ConversationDataset` in the stage's template, with the tower's
        preprocessing (after LLaVA's square padding when `image_aspect_ratio` is `pad`)."""
        from sea.data.llava import image_mean
        from sea.training.data import ConversationDataset

        return ConversationDataset(
            samples,
            mllm.tokenizer,
            str(self.section["template"]),
            select(self.cfg, f"data.{data}.image_folder"),
            mllm.vision.preprocess,
            image_aspect_ratio=str(self.section["image_aspect_ratio"]),
            image_mean=image_mean(mllm.vision.preprocess_cfg),
            **extra,
        )

    def freeze(self, module: Any, mllm: Any) -> None:
        """Frozen weights in the run's dtype; gradient checkpointing of the LLM when the settings ask."""
        from sea.training.loop import cast_frozen

        cast_frozen(module, self.settings.frozen_torch_dtype(self.hardware.mixed_precision))
        if self.settings.gradient_checkpointing:
            mllm.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def run(self, out: Path) -> dict[str, float]:
        """Train into `out` (written by the main process); returns the run's metrics."""
        import torch

        from sea.utils.io import write_json

        seed_everything(self.seed)  # same initialisation in every arm
        parts = self.setup()
        accelerator, result = self.fit(parts)
        metrics = result.metrics()
        record = self.save(accelerator, result.model, out, metrics)
        if self.proc.is_main:
            if self.folder.log_file.is_file():
                (out / TRAIN_LOG).write_bytes(self.folder.log_file.read_bytes())
            write_json(out / "metrics.json", {"arm": self.arm, "seed": self.seed, **record, **metrics})
        accelerator.wait_for_everyone()
        del accelerator, parts, result
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return metrics

    def fit(self, parts: TrainingParts) -> tuple[Any, Any]:
        """An accelerator, resumable checkpoints in the run's folder, then the loop (`loop.train`)."""
        from sea.training import loop
        from sea.training.checkpoint import CheckpointManager
        from sea.training.data import BatchLayout

        settings, hw = self.settings, self.hardware

        def accumulation(processes: int) -> int:
            layout = BatchLayout(settings.global_batch_size, settings.per_device_batch_size, processes)
            return layout.accumulation

        accelerator = loop.make_accelerator(hw.mixed_precision, hw.device, accumulation)
        ck = self.checkpoints
        checkpoints = CheckpointManager(
            self.folder.state_dir,
            self.folder.fingerprint,
            ck.every,
            ck.keep,
            ck.restart,
            restart_key=f"{self.stage}.checkpoint.restart",
        )
        if checkpoints.restart and self.proc.is_main:
            self.folder.log_file.unlink(missing_ok=True)
        result = loop.train(
            parts.module,
            parts.dataset,
            parts.collator,
            settings,
            parts.groups,
            accelerator=accelerator,
            seed=self.seed,
            run=loop.RunOptions(
                log_every=self.log.every,
                progress=self.log.progress,
                num_workers=hw.num_workers,
                name=f"{self.stage}[{self.arm}, seed {self.seed}]",
                log_file=self.folder.log_file,
            ),
            checkpoints=checkpoints,
            tokens_per_image=parts.tokens_per_image,
            hooks=parts.hooks,
        )
        return accelerator, result


def train_stage(
    recipe: type[TrainingRecipe], cfg: DictConfig, out: Path, arm: str, stage_record: dict[str, Any]
) -> dict[str, float]:
    """A training stage's build: train `arm` at the config's seed into `out`, then drop the run's resume
    state. Under several processes every rank trains (data parallel); only the main one writes."""
    proc = process_info(cpu=Hardware.from_config(cfg).device == "cpu")
    run = recipe(cfg, arm, stage_record, proc)
    metrics = run.run(out)
    if proc.is_main:  # the run is in `out` now: its resume state is no longer needed
        remove_checkpoints(Path(run.checkpoints.dir), instance_subdir(run.seed, arm))
    return metrics
