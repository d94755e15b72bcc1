"""The stage contract: `run(cfg) -> metrics`, atomic outputs, skip when already done with this config."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sea.utils.dist import ProcessInfo, process_info
from sea.utils.io import atomic_dir, read_json, replace_dir, sha256_bytes, write_json

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS.json"


def select(cfg: DictConfig, key: str) -> Any:
    """The plain (resolved) value of a dotted key; a clear error when the key is missing."""
    value = OmegaConf.select(cfg, key, throw_on_missing=True, default=KeyError)
    if value is KeyError:
        raise KeyError(f"config key '{key}' is missing")
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def select_or(cfg: DictConfig, key: str, default: Any = None) -> Any:
    """Like `select`, with `default` for a missing or null key."""
    try:
        value = select(cfg, key)
    except KeyError:
        return default
    return default if value is None else value


def instance_subdir(seed: int, arm: str) -> str:
    """Where one training run (seed, arm) of a per-arm stage lives under the stage's folder."""
    return f"seed{int(seed)}/{arm}"


def _fingerprint(path: Path) -> Any:
    """What identifies an input's content cheaply: a finished stage's hash, or a file's size and mtime."""
    if (path / SUCCESS).is_file():
        return read_json(path / SUCCESS)["config_hash"]
    if path.is_file():
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    return None


@dataclass(frozen=True)
class Stage:
    """One pipeline stage. `build(cfg, out)` writes everything into `out` (a temp folder) and
    returns the metrics; `run(cfg)` wraps it with the skip check and the atomic rename.

    `params` are the dotted config keys the stage depends on (the `params:` of its `dvc.yaml`
    stage); `deps` the keys of input paths; `out` the key of its output folder.
    """

    name: str
    help: str
    params: tuple[str, ...]
    out: str
    build: Callable[[DictConfig, Path], dict]
    deps: tuple[str, ...] = ()
    # Prefect task tags, e.g. ("gpu",) so a work pool or concurrency limit can route the stage.
    tags: tuple[str, ...] = ()

    def out_dir(self, cfg: DictConfig) -> Path:
        return Path(select(cfg, self.out))

    def dep_paths(self, cfg: DictConfig) -> list[Path]:
        paths = []
        for key in self.deps:
            value = select(cfg, key)
            values = value.values() if isinstance(value, dict) else [value]
            paths += [Path(v) for v in values if v is not None]
        return paths

    def config_hash(self, cfg: DictConfig) -> str:
        record = {
            "stage": self.name,
            "params": {key: select(cfg, key) for key in self.params},
            "deps": {str(p): _fingerprint(p) for p in self.dep_paths(cfg)},
        }
        return sha256_bytes(json.dumps(record, sort_keys=True, default=str).encode())[:16]

    def stored_metrics(self, cfg: DictConfig) -> dict | None:
        """The metrics of a finished run with the same config hash, or None."""
        marker = self.out_dir(cfg) / SUCCESS
        if not marker.is_file():
            return None
        done = read_json(marker)
        return done["metrics"] if done.get("config_hash") == self.config_hash(cfg) else None

    def run(self, cfg: DictConfig) -> dict:
        stored = self.stored_metrics(cfg)
        if stored is not None:
            log.info(
                "%s: finished outputs with the same config hash in %s, skipped", self.name, self.out_dir(cfg)
            )
            return stored
        config_hash = self.config_hash(cfg)
        proc = process_info()
        if proc.world_size > 1:
            return self._run_ranks(cfg, config_hash, proc)
        with atomic_dir(self.out_dir(cfg)) as tmp:
            metrics = self.build(cfg, tmp)
            write_json(tmp / SUCCESS, {"stage": self.name, "config_hash": config_hash, "metrics": metrics})
        return metrics

    def _run_ranks(self, cfg: DictConfig, config_hash: str, proc: ProcessInfo) -> dict:
        """Every rank builds into one shared temp folder (each writing its own shard); the main rank
        writes the marker and renames the folder into place once all ranks are done."""
        final = self.out_dir(cfg)
        tmp = final.parent / f".{final.name}.tmp-{config_hash}"
        if proc.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        proc.barrier()
        metrics = self.build(cfg, tmp)
        proc.barrier()
        if proc.is_main:
            write_json(tmp / SUCCESS, {"stage": self.name, "config_hash": config_hash, "metrics": metrics})
            replace_dir(tmp, final)
        proc.barrier()
        return metrics
