"""Plumbing shared by the training stages: an arm's settings and the checkpoint folder of a training run.

An arm is a name plus overrides merged over the stage's config section (`<stage>.arm_overrides.<arm>`),
e.g. `baseline: {sea: {weight: 0.0}}`. Arms with the same seed share the adapter initialisation and the
data order.

Per training run, `<checkpoint.dir>/seed<seed>/<arm>/` holds `state/` (the `CheckpointManager`) and
`train_log.jsonl`; the stage deletes it once the run's outputs are in place.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.layout import TRAIN_LOG

ARM_KEYS = ("arm_overrides",)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def arm_config(section: Mapping[str, Any], arm: str) -> dict[str, Any]:
    """The stage section with the arm's overrides merged in (and the arm keys removed)."""
    overrides = (section.get("arm_overrides") or {}).get(arm) or {}
    base = {k: v for k, v in section.items() if k not in ARM_KEYS}
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise SeaError(f"arm_overrides.{arm} sets unknown keys {unknown}")
    return deep_merge(base, overrides)


def arm_params(params: Mapping[str, Any], arm: str) -> dict[str, Any]:
    """A per-arm stage's params (keys such as `align.sea`) as this arm trains with them: the arm's
    `<section>.arm_overrides.<arm>` merged into each `<section>.<key>` and dropped, plus `arm` and, for
    `align`, the arm's SEA weight as `lambda`, so the arms differ where they really differ in the
    tracker's compare view."""
    sections = {key.rsplit(".", 1)[0] for key in params if key.endswith(".arm_overrides")}
    out: dict[str, Any] = {"arm": arm}
    for key, value in params.items():
        section, _, name = key.rpartition(".")
        if section not in sections:
            out[key] = value
        elif name != "arm_overrides":
            over = ((params.get(f"{section}.arm_overrides") or {}).get(arm) or {}).get(name)
            if isinstance(value, Mapping) and isinstance(over, Mapping):
                out[key] = deep_merge(value, over)
            else:
                out[key] = value if over is None else over
    sea = out.get("align.sea")
    if isinstance(sea, Mapping):
        out["lambda"] = sea.get("weight")
    return out


class ArmFolder:
    """`<checkpoint.dir>/<run>/`: resumable state and the step log of one training run."""

    def __init__(self, root: str | Path, run: str, fingerprint: dict[str, Any]) -> None:
        self.root = Path(root) / run
        self.fingerprint = fingerprint

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def log_file(self) -> Path:
        return self.root / TRAIN_LOG
