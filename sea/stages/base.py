"""The stage contract: `run(cfg) -> metrics`, atomic outputs, skip when already done with this config."""

from __future__ import annotations

import functools
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.config import select, select_or
from sea.errors import SeaError
from sea.integrity import file_digests, find_damage, full_check_requested, nonfinite_metrics
from sea.layout import SUCCESS, input_fingerprint, instance_subdir, root_relative
from sea.utils.dist import ProcessInfo, process_info
from sea.utils.io import atomic_dir, read_json, replace_dir, sha256_bytes, write_json
from sea.utils.lock import exclusive

log = logging.getLogger(__name__)

# Config sections every stage may read that are not params: where things are, where runs are tracked,
# the machine it runs on. A per-arm stage also reads `seed` and `arms`: its instance (`Stage.instance`).
RUNTIME_KEYS = ("paths", "tracking", "hardware", "run_name")


def lock_path(final: Path) -> Path:
    """The lock file of a stage run's output folder (and its checkpoints): `.<name>.lock` beside it."""
    return final.parent / f".{final.name}.lock"


def remove_stale_temps(final: Path) -> None:
    """Temp folders of `final` left by a crashed run (call with the lock held: none is in use)."""
    if not final.parent.is_dir():
        return
    for pattern in (f".{final.name}.tmp-*", f".{final.name}.old-*"):
        for stale in final.parent.glob(pattern):
            log.warning("removing %s, left by a crashed run", stale)
            shutil.rmtree(stale, ignore_errors=True)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage. `build(cfg, out)` writes everything into `out` (a temp folder) and
    returns the metrics; `run(cfg)` wraps it with the skip check and the atomic rename.

    `params` are the dotted config keys the stage depends on (the `params:` of its `dvc.yaml`
    stage): every key its code reads, except input paths (`deps`, the keys of input paths), its
    output folder (`out`), the settings of the run rather than of the result (`RUNTIME_KEYS`) and
    the stage's own such keys (`runtime`: progress bars, caches, checkpoints, devices). A change in
    a `runtime` key neither reruns the stage under `dvc repro` nor changes its config hash.

    A `per_arm` stage (the training and evaluation stages) runs once per training run: one arm of
    `arms` at the config's `seed`. It builds with `build(cfg, out, arm)` into
    `<out>/seed<seed>/<arm>` (`instance_subdir`), and the deps listed in `arm_deps` are read at the
    same subfolder (the matching run of an earlier per-arm stage).
    """

    name: str
    help: str
    params: tuple[str, ...]
    out: str
    build: Callable[..., dict]
    deps: tuple[str, ...] = ()
    runtime: tuple[str, ...] = ()
    # Prefect task tags, e.g. ("gpu",) so a work pool or concurrency limit can route the stage.
    tags: tuple[str, ...] = ()
    per_arm: bool = False
    arm_deps: tuple[str, ...] = ()
    # Per-arm stages with `tracking.register_models`: `log_model(tracker, out_dir, name, tags)` logs the
    # output as an MLflow model of the stage run, registered as `name` (the version number back); or this
    # stage's metrics are scores of the registered model of stage `scores_for` (same arm and seed).
    log_model: Callable[..., str | None] | None = None
    scores_for: str | None = None

    def instance(self, cfg: DictConfig, arm: str | None) -> str | None:
        """`seed<seed>/<arm>` for a per-arm stage (None otherwise); a clear error for a wrong arm."""
        if not self.per_arm:
            if arm is not None:
                raise SeaError(f"stage '{self.name}' does not run per arm (got arm '{arm}')")
            return None
        arms = [str(a) for a in select(cfg, "arms")]
        if arm is None:
            raise SeaError(f"stage '{self.name}' runs once per arm: name one of {arms}")
        if arm not in arms:
            raise SeaError(f"arm '{arm}' is not in arms {arms}")
        return instance_subdir(select(cfg, "seed"), arm)

    def out_dir(self, cfg: DictConfig, arm: str | None = None) -> Path:
        sub = self.instance(cfg, arm)
        root = Path(select(cfg, self.out))
        return root / sub if sub else root

    def metrics_file(self, cfg: DictConfig, arm: str | None = None) -> Path:
        """`<paths.metrics>/<stage>.json`, per arm `<paths.metrics>/<stage>/seed<seed>-<arm>.json`."""
        sub = self.instance(cfg, arm)
        root = Path(select(cfg, "paths.metrics"))
        return root / self.name / f"{sub.replace('/', '-')}.json" if sub else root / f"{self.name}.json"

    def dep_paths(self, cfg: DictConfig, arm: str | None = None) -> list[Path]:
        sub = self.instance(cfg, arm)
        paths = []
        for key in self.deps:
            value = select(cfg, key)
            if isinstance(value, dict):
                values = [value.get(arm)] if key in self.arm_deps else list(value.values())
            elif key in self.arm_deps and value is not None:
                values = [Path(value) / sub]
            else:
                values = [value]
            paths += [Path(v) for v in values if v is not None]
        return paths

    def hash_record(self, cfg: DictConfig, arm: str | None = None) -> dict[str, Any]:
        """What identifies a run of the stage: its params, its inputs' fingerprints, its instance
        (paths under `paths.root` written relative to it, so a moved root keeps its hashes)."""
        record = {
            "stage": self.name,
            "params": {key: select(cfg, key) for key in self.params},
            "deps": {str(p): input_fingerprint(p) for p in self.dep_paths(cfg, arm)},
        }
        if self.per_arm:
            record["instance"] = self.instance(cfg, arm)
        return root_relative(record, select_or(cfg, "paths.root"))

    def config_hash(self, cfg: DictConfig, arm: str | None = None) -> str:
        record = self.hash_record(cfg, arm)
        return sha256_bytes(json.dumps(record, sort_keys=True, default=str).encode())[:16]

    def stored_metrics(self, cfg: DictConfig, arm: str | None = None) -> dict | None:
        """The metrics of a finished, intact run with the same config hash, or None. Intact: every
        recorded file has its recorded size (and hash, with `SEA_VERIFY=hash`), the metrics are finite."""
        folder = self.out_dir(cfg, arm)
        marker = folder / SUCCESS
        if not marker.is_file():
            return None
        done = read_json(marker)
        if done.get("config_hash") != self.config_hash(cfg, arm):
            return None
        problem = find_damage(folder, done.get("files") or {}, full_check_requested())
        if problem is None and nonfinite_metrics(done["metrics"]):
            problem = f"non-finite metrics {nonfinite_metrics(done['metrics'])}"
        if problem:
            log.warning("%s: finished outputs in %s are damaged (%s): run again", self.name, folder, problem)
            return None
        return done["metrics"]

    def run(self, cfg: DictConfig, arm: str | None = None) -> dict:
        """The stored metrics when finished with this config, else build into a temp folder and rename
        it into place. One writer at a time: the output's lock is held throughout (`lock_path`), and
        temp folders a crashed run left are removed once it is."""
        proc = process_info()
        if proc.world_size > 1:  # launched ranks: the launching process holds the lock
            return self._run_unlocked(cfg, arm, proc)
        final = self.out_dir(cfg, arm)
        with exclusive(lock_path(final), f"{self.name} outputs {final}"):
            remove_stale_temps(final)
            return self._run_unlocked(cfg, arm, proc)

    def _run_unlocked(self, cfg: DictConfig, arm: str | None, proc: ProcessInfo) -> dict:
        stored = self.stored_metrics(cfg, arm)
        if stored is not None:
            log.info(
                "%s: finished outputs with the same config hash in %s, skipped",
                self.name,
                self.out_dir(cfg, arm),
            )
            return stored
        config_hash = self.config_hash(cfg, arm)
        build = functools.partial(self.build, arm=arm) if self.per_arm else self.build
        final = self.out_dir(cfg, arm)
        if proc.world_size > 1:
            return self._run_ranks(cfg, build, final, config_hash, proc)
        with atomic_dir(final) as tmp:
            metrics = build(cfg, tmp)
            self.write_success(tmp, config_hash, metrics)
        return metrics

    def write_success(self, folder: Path, config_hash: str, metrics: dict) -> None:
        """The marker of a finished run: config hash, metrics, size and sha256 of every output file."""
        record = {"stage": self.name, "config_hash": config_hash, "metrics": metrics}
        write_json(folder / SUCCESS, record | {"files": file_digests(folder)})

    def _run_ranks(
        self, cfg: DictConfig, build: Callable[..., dict], final: Path, config_hash: str, proc: ProcessInfo
    ) -> dict:
        """Every rank builds into one shared temp folder (each writing its own shard); the main rank
        writes the marker and renames the folder into place once all ranks are done."""
        tmp = final.parent / f".{final.name}.tmp-{config_hash}"
        if proc.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        proc.barrier()
        metrics = build(cfg, tmp)
        proc.barrier()
        if proc.is_main:
            self.write_success(tmp, config_hash, metrics)
            replace_dir(tmp, final)
        proc.barrier()
        return metrics
