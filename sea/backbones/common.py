"""Small pieces both trainers share: seeding (`sea.utils.seed`), the LR schedule, config checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sea.utils.seed import seed_everything  # noqa: F401 (the trainers seed through here)


def cosine_lr(base_lr: float, warmup: int, steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """open_clip's schedule: linear warmup for `warmup` steps (the first at `base_lr / warmup`), then
    cosine decay to `min_ratio * base_lr` at `steps` (`sea.training.optim.lr_at`)."""
    from sea.training.optim import lr_at

    def lr(step: int) -> float:
        return lr_at(step, base_lr, steps, warmup, "cosine", min_ratio, warmup_offset=1)

    return lr


def set_lr(optimizer: Any, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def require(section: dict, keys: tuple[str, ...], where: str) -> None:
    """A clear error for missing config keys (instead of a KeyError deep inside training)."""
    missing = [k for k in keys if k not in section]
    if missing:
        raise KeyError(f"config section '{where}' is missing key(s): {', '.join(missing)}")
