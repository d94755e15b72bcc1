"""The one training loop of both stages, on accelerate, meant to be read top to bottom (nanoGPT-style).

    for each optimizer step:
        for each of the `accumulation` micro-batches of this process:
            loss, metrics = model(batch)          # the stage's module: LM loss (+ lambda * SEA loss)
            accelerator.backward(loss)             # divided by `accumulation`; gradients synced on the last
        clip gradients, AdamW step, lr schedule step, zero gradients, module.after_optimizer_step()
        log loss terms, lr, grad norm, tokens/s (MLflow via `sea.tracking.current()`, a JSONL file, tqdm)
        every N steps: checkpoint (model's trainable parameters, optimizer, scheduler, RNG, step)

What accelerate brings: DDP / FSDP / DeepSpeed from the launch configuration, mixed precision
(bf16 autocast on GPU, fp32 on CPU), gradient accumulation with `no_sync`, `save_state`/`load_state`.
The data order is ours (`GlobalBatchSampler`): the global batch per optimizer step is fixed, whatever
the number of processes (global = per-device x accumulation x processes). The loss of a step is the
mean over its micro-batches of each micro-batch's mean token loss (LLaVA / HF Trainer behaviour), so
one process with accumulation 2 and two processes with accumulation 1 compute the same gradient.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from sea.errors import SeaError
from sea.training.checkpoint import (
    CheckpointManager,
    TrainState,
    trainable_state_check,
    trainable_state_filter,
)
from sea.training.data import BatchLayout, GlobalBatchSampler, move_to
from sea.training.optim import SCHEDULES, build_optimizer, lr_lambda, warmup_steps_for
from sea.utils.settings import require, settings_from

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings of one stage (config `<stage>.train`); defaults are LLaVA-1.5's."""

    lr: float
    global_batch_size: int
    per_device_batch_size: int
    epochs: int = 1
    max_steps: int | None = None  # overrides epochs when set
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_ratio: float = 0.03
    warmup_steps: int | None = None  # overrides warmup_ratio when set
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0  # max gradient norm (HF's max_grad_norm); None: no clipping
    gradient_checkpointing: bool = False
    # dtype of the frozen weights: 'auto' = the mixed-precision dtype (bf16 on GPU), else fp32.
    frozen_dtype: str = "auto"
    shuffle: bool = True
    # Consecutive optimizer steps with a non-finite loss or gradient norm tolerated (their update is
    # skipped; under fp16 the loss scaler skips them itself) before the run stops with an error.
    nonfinite_patience: int = 0

    @classmethod
    def from_config(cls, c: Mapping[str, Any], where: str = "train") -> TrainSettings:
        """From the config section `where`: unknown keys, wrong types and out-of-range values are a
        `SeaError` naming the key."""
        s = settings_from(cls, c, where)
        s.check(where)
        return s

    def check(self, where: str) -> None:
        positive = "a positive integer"
        require(self.lr > 0 and math.isfinite(self.lr), f"{where}.lr", "a finite number > 0", self.lr)
        require(self.global_batch_size >= 1, f"{where}.global_batch_size", positive, self.global_batch_size)
        require(
            self.per_device_batch_size >= 1,
            f"{where}.per_device_batch_size",
            positive,
            self.per_device_batch_size,
        )
        require(self.epochs >= 1, f"{where}.epochs", positive, self.epochs)
        require(self.max_steps is None or self.max_steps >= 1, f"{where}.max_steps", positive, self.max_steps)
        require(self.weight_decay >= 0, f"{where}.weight_decay", ">= 0", self.weight_decay)
        require(all(0 <= b < 1 for b in self.betas), f"{where}.betas", "two numbers in [0, 1)", self.betas)
        require(self.eps > 0, f"{where}.eps", "> 0", self.eps)
        require(0 <= self.warmup_ratio <= 1, f"{where}.warmup_ratio", "in [0, 1]", self.warmup_ratio)
        require(
            self.warmup_steps is None or self.warmup_steps >= 0,
            f"{where}.warmup_steps",
            ">= 0",
            self.warmup_steps,
        )
        require(self.schedule in SCHEDULES, f"{where}.schedule", f"one of {SCHEDULES}", self.schedule)
        require(0 <= self.min_lr_ratio <= 1, f"{where}.min_lr_ratio", "in [0, 1]", self.min_lr_ratio)
        require(
            self.grad_clip is None or self.grad_clip > 0, f"{where}.grad_clip", "> 0 or null", self.grad_clip
        )
        frozen = ("auto", *DTYPES)
        require(self.frozen_dtype in frozen, f"{where}.frozen_dtype", f"one of {frozen}", self.frozen_dtype)
        require(self.nonfinite_patience >= 0, f"{where}.nonfinite_patience", ">= 0", self.nonfinite_patience)

    def frozen_torch_dtype(self, mixed_precision: str) -> torch.dtype:
        if self.frozen_dtype == "auto":
            return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision, torch.float32)
        if self.frozen_dtype not in DTYPES:
            raise SeaError(
                f"train.frozen_dtype must be 'auto' or one of {sorted(DTYPES)}, got {self.frozen_dtype!r}"
            )
        return DTYPES[self.frozen_dtype]


@dataclass(frozen=True)
class RunOptions:
    """Settings that do not change the result (not part of the checkpoint fingerprint)."""

    log_every: int = 1
    progress: bool = True
    num_workers: int = 0
    prefix: str = "train"  # metric name prefix (MLflow)
    name: str = "train"  # what logs and the progress bar call the run, e.g. "align[sea, seed 0]"
    log_file: Path | None = None  # per-step JSONL log (main process)


@dataclass
class TrainHooks:
    """Optional callbacks (tests, diagnostics): after the backward passes of a step, before clipping;
    after a finished optimizer step."""

    before_optimizer_step: Callable[[nn.Module, TrainState], None] | None = None
    after_step: Callable[[TrainState, dict[str, float]], None] | None = None


@dataclass
class TrainResult:
    """The prepared (possibly wrapped) model, steps done, where it resumed, wall time, last logged row."""

    model: Any
    steps: int
    resumed_from: int
    seconds: float
    final: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """The stage metrics of the run: the last logged row, steps, resume point, seconds."""
        out = {k: float(v) for k, v in self.final.items()}
        return out | {"steps": self.steps, "resumed_from": self.resumed_from, "seconds": self.seconds}


def make_accelerator(mixed_precision: str, device: str, accumulation_for: Callable[[int], int]) -> Any:
    """An `Accelerator` for this process. Under `accelerate launch` the launch config decides the
    distributed setup; in a plain process any accelerate state left by an earlier in-process stage is
    reset first (it is process-wide). `accumulation_for(num_processes)` gives the accumulation steps."""
    from accelerate import Accelerator, PartialState
    from accelerate.state import AcceleratorState, GradientState

    cpu = device == "cpu"
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    if not cpu and not torch.cuda.is_available():
        raise SeaError(f"hardware.device is '{device}' but CUDA is not available (use hardware=cpu)")
    processes = PartialState(cpu=cpu).num_processes
    return Accelerator(
        mixed_precision=mixed_precision,
        cpu=cpu,
        gradient_accumulation_steps=accumulation_for(processes),
        step_scheduler_with_optimizer=False,
    )


def cast_frozen(module: nn.Module, dtype: torch.dtype) -> None:
    """Frozen parameters (requires_grad off) to `dtype`; trainable ones stay fp32 (the master weights)."""
    if dtype == torch.float32:
        return
    for p in module.parameters():
        if not p.requires_grad and p.is_floating_point():
            p.data = p.data.to(dtype)


def train(
    module: nn.Module,
    dataset: Dataset,
    collator: Callable[[list], dict],
    settings: TrainSettings,
    groups: list[dict],
    *,
    accelerator: Any,
    seed: int,
    run: RunOptions = RunOptions(),
    checkpoints: CheckpointManager | None = None,
    tokens_per_image: int = 0,
    hooks: TrainHooks | None = None,
) -> TrainResult:
    """Train `module` (forward(batch) -> (loss, metrics dict of 0-d tensors); optional
    `after_optimizer_step()`) on `dataset`; returns when the last step is done. Resumes from the latest
    checkpoint of `checkpoints` (refusing a stale one)."""
    hooks = hooks or TrainHooks()
    layout = BatchLayout(
        settings.global_batch_size, settings.per_device_batch_size, accelerator.num_processes
    )
    if accelerator.gradient_accumulation_steps != layout.accumulation:
        raise SeaError(
            f"accelerator accumulates {accelerator.gradient_accumulation_steps} micro-batches, the batch "
            f"layout needs {layout.accumulation}"
        )
    steps_per_epoch = len(dataset) // layout.global_batch
    total_steps = int(settings.max_steps) if settings.max_steps else steps_per_epoch * int(settings.epochs)
    if total_steps < 1:
        raise SeaError(
            f"{len(dataset)} samples give no optimizer step with a global batch of {layout.global_batch}"
        )
    warmup = warmup_steps_for(total_steps, settings.warmup_ratio, settings.warmup_steps)
    dropped = len(dataset) - steps_per_epoch * layout.global_batch
    log.info(
        "%s: %d samples, %d steps (%d per epoch, %d samples dropped per epoch), global batch %d = "
        "%d per device x %d accumulation x %d processes, warmup %d",
        run.name,
        len(dataset),
        total_steps,
        steps_per_epoch,
        dropped,
        layout.global_batch,
        layout.per_device,
        layout.accumulation,
        layout.num_processes,
        warmup,
    )

    # ---- setup: optimizer, schedule, accelerate ----------------------------------------------
    optimizer = build_optimizer(groups, settings.betas, settings.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total_steps, warmup, settings.schedule, settings.min_lr_ratio)
    )
    if accelerator.distributed_type.name == "DEEPSPEED":
        # no dataloader goes through `prepare`, so DeepSpeed learns the batch layout here
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = layout.per_device
        ds["gradient_accumulation_steps"] = layout.accumulation
        ds["train_batch_size"] = layout.global_batch
    model, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
    state = TrainState()
    accelerator.register_for_checkpointing(state)
    accelerator.register_save_state_pre_hook(trainable_state_filter(model))
    accelerator.register_load_state_pre_hook(trainable_state_check(model))
    trainable = [p for p in model.parameters() if p.requires_grad]

    resumed_from = 0
    if checkpoints is not None:
        latest = checkpoints.check(is_main=accelerator.is_main_process)
        accelerator.wait_for_everyone()
        if latest is not None:
            accelerator.load_state(str(latest), strict=False)
            resumed_from = state.step
            log.info("%s: resumed from %s (step %d of %d)", run.name, latest, state.step, total_steps)

    sampler = GlobalBatchSampler(
        len(dataset), layout, accelerator.process_index, seed, total_steps, state.step, settings.shuffle
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collator,
        num_workers=run.num_workers,
        pin_memory=accelerator.device.type == "cuda",
        generator=torch.Generator(),  # worker seeds must not draw from the global RNG (resume is exact)
    )
    batches = iter(loader)
    log_file = None
    if run.log_file is not None and accelerator.is_main_process:
        _truncate_log(run.log_file, state.step)  # rows after the checkpoint are trained again
        run.log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(run.log_file, "a", encoding="utf-8")  # noqa: SIM115
    bar = _progress(total_steps, state.step, run, accelerator.is_main_process)

    # ---- the loop ------------------------------------------------------------------------------
    model.train()
    start = time.perf_counter()
    interval_start, interval_tokens, interval_steps = time.perf_counter(), 0, 0
    final: dict[str, float] = {}
    nonfinite = 0  # consecutive steps with a non-finite loss or gradient norm
    try:
        while state.step < total_steps:
            sums: dict[str, torch.Tensor] = {}
            for _ in range(layout.accumulation):
                batch = next(batches)
                interval_tokens += _count_tokens(batch, tokens_per_image)
                batch = move_to(batch, accelerator.device)
                with accelerator.accumulate(model):
                    loss, metrics = model(batch)
                    accelerator.backward(loss)
                for key, value in metrics.items():
                    sums[key] = sums.get(key, 0.0) + value.detach().float() / layout.accumulation
            if hooks.before_optimizer_step is not None:
                hooks.before_optimizer_step(model, state)
            grad_norm = accelerator.clip_grad_norm_(trainable, settings.grad_clip or math.inf)
            lr = scheduler.get_last_lr()[0]
            loss = sums.get("loss") if accelerator.num_processes == 1 else None  # local
            nonfinite = _nonfinite(loss, grad_norm, nonfinite, state.step + 1, settings, run)
            if not nonfinite or accelerator.scaler is not None:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if hasattr(accelerator.unwrap_model(model), "after_optimizer_step"):
                accelerator.unwrap_model(model).after_optimizer_step()
            state.step += 1
            state.samples += layout.global_batch
            interval_steps += 1

            last = state.step == total_steps
            if state.step % max(1, run.log_every) == 0 or last:
                values = _reduce(accelerator, sums, interval_tokens)
                tokens = values.pop("tokens")
                state.tokens += int(tokens)
                elapsed = time.perf_counter() - interval_start
                row = {
                    **values,
                    "lr": float(lr),
                    "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                    "tokens_per_s": tokens / max(elapsed, 1e-9),
                    "step_s": elapsed / interval_steps,
                }
                final = row
                if accelerator.is_main_process:
                    _log_step(run, row, state.step, log_file)
                    bar.set_postfix(
                        loss=f"{row.get('loss', float('nan')):.4f}", lr=f"{lr:.2e}", refresh=False
                    )
                interval_start, interval_tokens, interval_steps = time.perf_counter(), 0, 0
            bar.update(1)
            if hooks.after_step is not None:
                hooks.after_step(state, final)
            if checkpoints is not None and checkpoints.due(state.step, total_steps):
                checkpoints.save(accelerator, state.step)
    finally:
        bar.close()
        if log_file is not None:
            log_file.close()
    accelerator.wait_for_everyone()
    return TrainResult(model, total_steps, resumed_from, time.perf_counter() - start, final)


# ---- helpers ---------------------------------------------------------------------------------------


def _count_tokens(batch: dict[str, Any], tokens_per_image: int) -> int:
    """Tokens of a CPU batch (text without padding + visual tokens), counted without a device sync."""
    images = batch.get("images")
    n_images = (
        images.shape[0] if isinstance(images, torch.Tensor) else sum(x is not None for x in images or [])
    )
    return int(batch["attention_mask"].sum()) + n_images * tokens_per_image


class NonFiniteError(SeaError):
    """Training diverged: the loss or the gradient norm stayed non-finite longer than the patience."""


def _nonfinite(
    loss: Any, grad_norm: Any, streak: int, step: int, settings: TrainSettings, run: RunOptions
) -> int:
    """The new count of consecutive non-finite steps after optimizer step `step` (0 when this one is
    finite); raises `NonFiniteError` naming the step once the count exceeds the patience. The gradient
    norm is global (all-reduced gradients), so every process decides alike."""
    values = {"grad_norm": grad_norm, "loss": loss}
    bad = {k: float(v) for k, v in values.items() if v is not None and not math.isfinite(float(v))}
    if not bad:
        return 0
    streak += 1
    found = ", ".join(f"{k}={v}" for k, v in bad.items())
    if streak > settings.nonfinite_patience:
        raise NonFiniteError(
            f"{run.name}: non-finite {found} at optimizer step {step} ({streak} in a row, patience "
            f"{settings.nonfinite_patience}); the run is stopped, nothing is saved as finished. Lower the "
            "learning rate, or raise <stage>.train.nonfinite_patience for rare fp16 overflow steps"
        )
    log.warning("%s: non-finite %s at optimizer step %d, update skipped", run.name, found, step)
    return streak


def _reduce(accelerator: Any, sums: dict[str, torch.Tensor], tokens: int) -> dict[str, float]:
    """Means over processes of the step metrics, and the total tokens (one collective)."""
    keys = sorted(sums)
    vec = torch.stack(
        [torch.as_tensor(sums[k], device=accelerator.device).float() for k in keys]
        + [torch.tensor(float(tokens), device=accelerator.device)]
    )
    vec = accelerator.reduce(vec, reduction="sum") if accelerator.num_processes > 1 else vec
    values = vec.tolist()
    out = {k: v / accelerator.num_processes for k, v in zip(keys, values[:-1], strict=True)}
    out["tokens"] = values[-1]
    return out


def _truncate_log(path: Path, step: int) -> None:
    if not path.is_file():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    keep = [line for line in rows if json.loads(line).get("step", 0) <= step]
    if len(keep) != len(rows):
        path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


def _log_step(run: RunOptions, row: dict[str, float], step: int, log_file: Any) -> None:
    from sea.tracking import current

    current().log_metrics({f"{run.prefix}/{k}": v for k, v in row.items()}, step=step)
    if log_file is not None:
        log_file.write(json.dumps({"step": step, **row}, sort_keys=True) + "\n")
        log_file.flush()


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, initial: int, run: RunOptions, is_main: bool) -> Any:
    if not (run.progress and is_main):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=run.name, unit="step", mininterval=1.0, dynamic_ncols=True)
