"""Which process this is when a stage runs under `accelerate launch` (or torchrun) on several processes.

Without a launcher (WORLD_SIZE unset or 1) this is one process and no accelerate state is made, so
single-process runs never import accelerate or torch for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sea.errors import SeaError


@dataclass(frozen=True)
class Hardware:
    """The `hardware` section (conf/hardware/*.yaml): where and how the processes run."""

    device: str
    num_processes: int
    mixed_precision: str
    accelerate_config: str | None
    num_workers: int

    @classmethod
    def from_config(cls, cfg: Any) -> Hardware:
        """From a whole config (its `hardware` section)."""
        from sea.config import select
        from sea.utils.settings import settings_from

        return settings_from(cls, select(cfg, "hardware"), "hardware")


@dataclass(frozen=True)
class ProcessInfo:
    """This process's rank among `world_size`, its device (None: from config) and a barrier."""

    rank: int = 0
    world_size: int = 1
    device: str | None = None
    barrier: Callable[[], None] = lambda: None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_info(cpu: bool = False) -> ProcessInfo:
    """Rank, world size and device from accelerate when launched with several processes.

    CPU processes (`cpu`, `ACCELERATE_USE_CPU`, or no CUDA) join a gloo group: accelerate's
    `PartialState` treats several processes as one unless told `cpu=True`. On CPU,
    `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2` (torchrun underneath)
    starts two processes; `accelerate launch --cpu` alone starts one unless MPI is set up.
    """
    if launched_world_size() <= 1:
        return ProcessInfo()
    import torch
    from accelerate import PartialState

    env_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    state = PartialState(cpu=cpu or env_cpu or not torch.cuda.is_available())
    if state.num_processes != launched_world_size():
        raise SeaError(
            f"WORLD_SIZE={launched_world_size()} but accelerate set up {state.num_processes} process(es)"
        )
    return ProcessInfo(state.process_index, state.num_processes, str(state.device), state.wait_for_everyone)
