"""The stage registry both runners (the CLI / `dvc repro` and the Prefect flow) iterate."""

from __future__ import annotations

import importlib

from sea.stages.base import Stage

# Pipeline order. Each name is a module `sea.stages.<name>` exposing `STAGE` (and `run = STAGE.run`).
# Stage modules keep heavy imports (torch, open_clip, ...) inside functions so `--help` stays fast.
STAGE_NAMES: tuple[str, ...] = (
    "world",
    "backbones",
    "prepare",
    "label",
    "align",
    "instruct",
    "evaluate",
    "report",
)


def get_stage(name: str) -> Stage:
    if name not in STAGE_NAMES:
        raise KeyError(f"unknown stage '{name}'; stages are: {', '.join(STAGE_NAMES)}")
    return importlib.import_module(f"sea.stages.{name}").STAGE


__all__ = ["STAGE_NAMES", "Stage", "get_stage"]
