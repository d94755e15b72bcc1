"""AdamW with named parameter groups and the learning-rate schedule (HF's cosine with warmup)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from sea.errors import SeaError

SCHEDULES = ("cosine", "linear", "constant")


@dataclass(frozen=True)
class ParamGroupSpec:
    """Trainable parameters of one part of the model and its learning rate (None: the base lr)."""

    name: str
    module: nn.Module | Iterable[nn.Parameter]
    lr: float | None = None


def param_groups(specs: Iterable[ParamGroupSpec], base_lr: float, weight_decay: float) -> list[dict]:
    """AdamW groups: per spec, decayed weights and non-decayed 1-D tensors (biases, norms, the logit
    scale; open_clip's rule), only parameters with `requires_grad`; empty groups are left out; a
    parameter is never in two groups (the first spec that has it wins)."""
    groups: list[dict] = []
    seen: set[int] = set()
    for spec in specs:
        params = spec.module.parameters() if isinstance(spec.module, nn.Module) else spec.module
        decay, no_decay = [], []
        for p in params:
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if p.ndim <= 1 else decay).append(p)
        lr = base_lr if spec.lr is None else float(spec.lr)
        for suffix, plist, wd in (("", decay, weight_decay), ("/no_decay", no_decay, 0.0)):
            if plist:
                groups.append({"name": spec.name + suffix, "params": plist, "lr": lr, "weight_decay": wd})
    if not groups:
        raise SeaError("nothing to train: no parameter requires a gradient")
    return groups


def build_optimizer(
    groups: list[dict], betas: Iterable[float], eps: float, fused: bool | None = None
) -> torch.optim.AdamW:
    """torch AdamW (HF's default `adamw_torch`) over `groups`; each group keeps its own lr."""
    for g in groups:
        g["initial_lr"] = g["lr"]
    return torch.optim.AdamW(groups, lr=groups[0]["lr"], betas=tuple(betas), eps=eps, fused=fused)


def lr_at(
    step: int,
    base_lr: float,
    total_steps: int,
    warmup_steps: int,
    schedule: str = "cosine",
    min_lr_ratio: float = 0.0,
    warmup_offset: int = 0,
) -> float:
    """The learning rate at optimizer step `step` (0-based): linear warmup over `warmup_steps`, then
    cosine (or linear) decay to `min_lr_ratio * base_lr` at `total_steps` (or constant).

    Warmup is `base_lr * (step + warmup_offset) / warmup_steps`: offset 0 is HF's (the first step at lr
    0, what LLaVA's stages use), offset 1 open_clip's (the first step at `base_lr / warmup_steps`)."""
    if schedule not in SCHEDULES:
        raise SeaError(f"train.schedule must be one of {SCHEDULES}, got {schedule!r}")
    if step < warmup_steps:
        return base_lr * (step + warmup_offset) / max(1, warmup_steps)
    if schedule == "constant":
        return base_lr
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress
    return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * decay)


def lr_lambda(
    total_steps: int, warmup_steps: int, schedule: str = "cosine", min_lr_ratio: float = 0.0
) -> Callable[[int], float]:
    """Multiplier of the base lr at optimizer step `step` (0-based), as HF's schedules (`lr_at`)."""
    if schedule not in SCHEDULES:
        raise SeaError(f"train.schedule must be one of {SCHEDULES}, got {schedule!r}")

    def factor(step: int) -> float:
        return lr_at(step, 1.0, total_steps, warmup_steps, schedule, min_lr_ratio)

    return factor


def warmup_steps_for(total_steps: int, warmup_ratio: float, warmup_steps: int | None = None) -> int:
    """HF's rule: explicit steps if given, else ceil(ratio x total)."""
    if warmup_steps is not None:
        return int(warmup_steps)
    return math.ceil(total_steps * float(warmup_ratio))
