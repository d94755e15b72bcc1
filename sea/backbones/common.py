"""Small pieces both trainers share: seeding, AdamW parameter groups, the LR schedule, step logging."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (model init, dropout). CPU kernels are deterministic for a fixed
    thread count; no process-wide switches are flipped (stages may share a process)."""
    import torch

    torch.manual_seed(seed)


def param_groups(model: Any, weight_decay: float) -> list[dict]:
    """open_clip's rule: no weight decay on 1-D parameters (biases, norms, logit scale, class token)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def cosine_lr(base_lr: float, warmup: int, steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """Linear warmup for `warmup` steps, then cosine decay to `min_ratio * base_lr` at `steps`."""

    def lr_at(step: int) -> float:
        if warmup > 0 and step < warmup:
            return base_lr * (step + 1) / warmup
        span = max(1, steps - warmup)
        progress = min(1.0, (step - warmup) / span)
        return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    return lr_at


def set_lr(optimizer: Any, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def require(section: dict, keys: tuple[str, ...], where: str) -> None:
    """A clear error for missing config keys (instead of a KeyError deep inside training)."""
    missing = [k for k in keys if k not in section]
    if missing:
        raise KeyError(f"config section '{where}' is missing key(s): {', '.join(missing)}")
