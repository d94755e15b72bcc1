"""Run a stage in processes of its own: under `accelerate launch` (DDP, FSDP or DeepSpeed from the
hardware preset's accelerate config) when `hardware.num_processes` > 1, which is what a runner does for
a GPU stage instead of calling `sea.runner.execute` in-process; or as one plain `python -m sea` process
(the Prefect flow's concurrent stage runs). The launched processes get the resolved config as a params
file and the MLflow parent run id in `SEA_MLFLOW_PARENT_RUN_ID`; only rank 0 tracks. Their output
streams into this process's log, line by line."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from omegaconf import DictConfig

from sea.config import to_yaml
from sea.errors import SeaError
from sea.stages.base import Stage
from sea.tracking import PARENT_ENV
from sea.utils.dist import Hardware
from sea.utils.io import read_json

log = logging.getLogger(__name__)

# Set in the launched processes' environment: they run the stage, they never launch again.
LAUNCHED_ENV = "SEA_LAUNCHED"


def processes(cfg: DictConfig) -> int:
    return Hardware.from_config(cfg).num_processes


def needs_launcher(cfg: DictConfig, stage: Stage) -> bool:
    """A GPU-tagged stage with several processes configured, not already inside a launched process."""
    inside = LAUNCHED_ENV in os.environ or "WORLD_SIZE" in os.environ
    return "gpu" in stage.tags and processes(cfg) > 1 and not inside


def launch_command(stage: str, cfg: DictConfig, params_file: Path, arm: str | None) -> list[str]:
    if processes(cfg) == 1:
        return [
            sys.executable,
            "-m",
            "sea",
            stage,
            "--params",
            str(params_file),
            *(["--arm", arm] if arm else []),
        ]
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    accelerate_config = Hardware.from_config(cfg).accelerate_config
    if accelerate_config:
        cmd += ["--config_file", str(accelerate_config)]
    cmd += ["--num_processes", str(processes(cfg))]
    cmd += ["-m", "sea", stage, "--params", str(params_file)]
    return cmd + (["--arm", arm] if arm else [])


def run_launched(
    name: str,
    cfg: DictConfig,
    parent_run_id: str | None,
    arm: str | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """Launch stage `name` (the run of `arm`) on `hardware.num_processes` processes, with `env` added to
    their environment; its metrics."""
    from sea.stages import get_stage
    from sea.stages.base import lock_path, remove_stale_temps
    from sea.utils.lock import exclusive

    stage = get_stage(name)
    final = stage.out_dir(cfg, arm)
    ranks = processes(cfg) > 1  # ranks do not lock the outputs: this process does; a lone process locks them
    with (
        exclusive(lock_path(final), f"{name} outputs {final}") if ranks else contextlib.nullcontext(),
        tempfile.TemporaryDirectory(prefix=f"sea-{name}-") as tmp,
    ):
        if ranks:
            remove_stale_temps(final)
        params = Path(tmp) / "params.yaml"
        params.write_text(to_yaml(cfg), encoding="utf-8")
        cmd = launch_command(name, cfg, params, arm)
        env = {**os.environ, **(env or {}), PARENT_ENV: parent_run_id or "", LAUNCHED_ENV: "1"}
        if Hardware.from_config(cfg).device == "cpu" and ranks:
            env["ACCELERATE_USE_CPU"] = "1"  # with a MULTI_CPU accelerate config: DDP over gloo
        log.info("launching: %s", " ".join(cmd))
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.info("%s", line.rstrip())
            code = proc.wait()
    if code != 0:
        raise SeaError(
            f"stage {name}{f' [{arm}]' if arm else ''} failed in its own process (exit {code}; log above)"
        )
    return read_json(stage.metrics_file(cfg, arm))
