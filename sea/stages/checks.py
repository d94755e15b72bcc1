"""Config checks run before any stage does work (the CLI and the flow call `check_config` right after
composing): types and ranges of the settings the selected stages read, `seeds` and `arms`. Each
problem is a one-line `SeaError` naming the key."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from omegaconf import DictConfig

from sea.config import select, select_or
from sea.errors import SeaError

ARM_SECTIONS = ("align.arm_overrides", "instruct.arm_overrides")


def check_runs(cfg: DictConfig) -> None:
    """`arms` and `seeds`: non-empty lists, arms unique names declared by the training stages' arm
    overrides (a typo must not train a default arm under a new name), seeds integers."""
    arms, seeds = select_or(cfg, "arms"), select_or(cfg, "seeds")
    if not isinstance(arms, list) or not arms:
        raise SeaError(f"arms must be a non-empty list of arm names, got {arms!r}")
    if len(set(map(str, arms))) != len(arms):
        raise SeaError(f"arms must be unique, got {arms}")
    declared = {str(a) for key in ARM_SECTIONS for a in select_or(cfg, key, {})}
    unknown = [str(a) for a in arms if declared and str(a) not in declared]
    if unknown:
        raise SeaError(
            f"unknown arm(s) {unknown}; arms are: {', '.join(sorted(declared))} "
            f"(an arm is declared in {' or '.join(f'{key}.<arm>' for key in ARM_SECTIONS)})"
        )
    if not isinstance(seeds, list) or not seeds:
        raise SeaError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool)]
    if bad:
        raise SeaError(f"seeds must be integers, got {bad}")


def check_training(stage: str) -> Callable[[DictConfig], None]:
    def check(cfg: DictConfig) -> None:
        from sea.training.arms import arm_config
        from sea.training.loop import TrainSettings
        from sea.training.sea_loss import SeaSettings

        for arm in select(cfg, "arms"):
            section = arm_config(select(cfg, stage), str(arm))
            TrainSettings.from_config(section.get("train") or {}, f"{stage}.train")
            if stage == "align":
                SeaSettings.from_config(section.get("sea"))

    return check


def check_prepare(cfg: DictConfig) -> None:
    from sea.stages.prepare import Validation

    Validation.from_config(select(cfg, "data.validation"))


CHECKS: dict[str, Callable[[DictConfig], None]] = {
    "prepare": check_prepare,
    "align": check_training("align"),
    "instruct": check_training("instruct"),
}


def check_config(cfg: DictConfig, stages: Sequence[str]) -> None:
    """Raise `SeaError` for the first bad value the `stages` would read."""
    check_runs(cfg)
    for name in stages:
        if name in CHECKS:
            CHECKS[name](cfg)
