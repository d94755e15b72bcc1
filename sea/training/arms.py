"""Plumbing shared by the training stages: arms, the checkpoint folder of an arm, and finished arms kept
across a crashed stage run.

An arm is a name plus overrides merged over the stage's config section (`<stage>.arm_overrides.<arm>`),
e.g. `baseline: {sea: {weight: 0.0}}`. Every arm trains from the same seed, so the arms share the
adapter initialisation and the data order.

Per arm, `<checkpoint.dir>/<arm>/` holds `state/` (the `CheckpointManager`), `train_log.jsonl`, and
`done/` once the arm has finished: a stage that crashes in its second arm does not retrain the first
one when re-run with the same config. The stage deletes `<checkpoint.dir>` after all arms finished.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sea.config import config_hash
from sea.errors import SeaError
from sea.utils.io import read_json, write_json

log = logging.getLogger(__name__)

DONE = "done"
DONE_FILE = "_DONE.json"
ARM_KEYS = ("arms", "arm_overrides")


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def arm_names(section: Mapping[str, Any], where: str) -> list[str]:
    """The arms to train, in order; a clear error for an empty or repeated list."""
    arms = section.get("arms")
    if isinstance(arms, str):
        arms = [arms]
    arms = [str(a) for a in (arms or [])]
    if not arms:
        raise SeaError(f"{where}.arms is empty: list the arms to train, e.g. [sea, baseline]")
    if len(set(arms)) != len(arms):
        raise SeaError(f"{where}.arms repeats an arm: {arms}")
    return arms


def arm_config(section: Mapping[str, Any], arm: str) -> dict[str, Any]:
    """The stage section with the arm's overrides merged in (and the arm keys removed)."""
    overrides = (section.get("arm_overrides") or {}).get(arm) or {}
    base = {k: v for k, v in section.items() if k not in ARM_KEYS}
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise SeaError(f"arm_overrides.{arm} sets unknown keys {unknown}")
    return deep_merge(base, overrides)


def folder_fingerprint(path: str | Path | None) -> Any:
    """A finished stage folder's config hash, a file's size and mtime, or None."""
    if path is None:
        return None
    p = Path(path)
    if (p / "_SUCCESS.json").is_file():
        return read_json(p / "_SUCCESS.json").get("config_hash")
    if p.is_file():
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]
    return None


class ArmFolder:
    """`<checkpoint.dir>/<arm>/`: resumable state, the step log, and the finished outputs."""

    def __init__(self, root: str | Path, arm: str, fingerprint: dict[str, Any]) -> None:
        self.root = Path(root) / arm
        self.fingerprint = fingerprint
        self.hash = config_hash(fingerprint)

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def log_file(self) -> Path:
        return self.root / "train_log.jsonl"

    def finished(self) -> dict[str, Any] | None:
        """Metrics of a finished arm with this fingerprint, or None (a stale one is removed)."""
        marker = self.root / DONE / DONE_FILE
        if not marker.is_file():
            return None
        done = read_json(marker)
        if done.get("hash") == self.hash:
            return done["metrics"]
        log.info("finished arm in %s has another config: discarded", self.root)
        shutil.rmtree(self.root / DONE, ignore_errors=True)
        return None

    def copy_finished(self, out: Path) -> None:
        shutil.copytree(self.root / DONE, out, dirs_exist_ok=True)
        (out / DONE_FILE).unlink(missing_ok=True)

    def store_finished(self, out: Path, metrics: dict[str, Any]) -> None:
        """Keep a copy of the arm's outputs until the whole stage has finished."""
        tmp = self.root / f".{DONE}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(out, tmp)
        write_json(tmp / DONE_FILE, {"hash": self.hash, "metrics": metrics})
        shutil.rmtree(self.root / DONE, ignore_errors=True)
        os.replace(tmp, self.root / DONE)
