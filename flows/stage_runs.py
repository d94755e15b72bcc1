"""The flow's stage runs as Prefect tasks, one after another or the arms' runs concurrently.

With `concurrency` 1 (the default on the CPU and on one GPU) every stage run is a task that runs in
the flow's own process, in pipeline order, as `python -m sea` would run it. With `concurrency` N > 1
the per-arm stage runs (align, instruct, evaluate of every arm and seed) are submitted together, each
waiting for its own arm's previous stage, and each runs in a process of its own (`python -m sea
<stage> --params ... --arm ...`, `sea.launch`): at most N at a time, each pinned to one of the visible
CUDA devices (round-robin) and given the flow's torch thread count, so that a run computes exactly what
it would compute alone (a stage's outputs depend only on its config and seed; global RNGs and the
accelerate state are per process). Their tasks carry the tag `gpu`: a Prefect concurrency limit on it
(`prefect concurrency-limit create gpu 1`) caps how many run at once across every flow run on a server.
"""

from __future__ import annotations

import contextlib
import os
import queue
from collections.abc import Iterator, Sequence

from omegaconf import DictConfig, OmegaConf
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait

from sea import tracking
from sea.config import select_or
from sea.runner import execute
from sea.stages import get_stage

GPU_TAG = "gpu"


def run_key(name: str, arm: str | None = None, seed: int | None = None) -> str:
    """`prepare`, or for a training run `align/sea/seed0`: the keys of the flow's result."""
    return name if arm is None else f"{name}/{arm}/seed{seed}"


def cuda_devices(cfg: DictConfig) -> list[str]:
    """The CUDA devices a run may be pinned to (ids as `CUDA_VISIBLE_DEVICES` names them); none off CUDA."""
    if not str(select_or(cfg, "hardware.device", "cpu")).startswith("cuda"):
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def default_concurrency(cfg: DictConfig) -> int:
    """One stage run per CUDA device when each run is a single process; otherwise one at a time (on
    the CPU concurrent runs would only share its cores)."""
    if int(select_or(cfg, "hardware.num_processes", 1)) > 1:
        return 1
    return max(1, len(cuda_devices(cfg)))


class RunSlots:
    """`n` places for a stage run in a process of its own: each is the extra environment of that process
    (its CUDA device, round-robin over `cuda_devices`, and this process's torch thread count)."""

    def __init__(self, n: int, cfg: DictConfig) -> None:
        import torch

        threads = str(torch.get_num_threads())
        devices = cuda_devices(cfg)
        self._free: queue.Queue[dict[str, str]] = queue.Queue()
        for i in range(n):
            env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
            if devices:
                env["CUDA_VISIBLE_DEVICES"] = devices[i % len(devices)]
            self._free.put(env)

    @contextlib.contextmanager
    def take(self) -> Iterator[dict[str, str]]:
        env = self._free.get()
        try:
            yield env
        finally:
            self._free.put(env)


@task(cache_policy=NO_CACHE, retries=0, persist_result=False)
def stage_task(
    name: str, cfg: dict, parent_run_id: str | None, arm: str | None = None, slots: RunSlots | None = None
) -> dict:
    """Plain data in and out: a resolved config dict, a run id, an arm, a metrics dict. With `slots` the
    stage runs in a process of its own, in one of the slots."""
    if slots is None:
        return execute(name, OmegaConf.create(cfg), parent_run_id, arm)
    from sea.launch import run_launched

    with slots.take() as env:
        return run_launched(name, OmegaConf.create(cfg), parent_run_id, arm, env=env)


def run_stages(
    selected: Sequence[str], plain: dict, parent_run_id: str | None, concurrency: int = 1, stage=stage_task
) -> dict[str, dict]:
    """Run the `selected` stages (pipeline order) as `stage` tasks, the per-arm ones for every seed and
    arm; their metrics by `run_key`. A stage that is not per arm waits for every run before it."""
    slots = RunSlots(concurrency, OmegaConf.create(plain)) if concurrency > 1 else None
    results: dict[str, dict] = {}
    submitted: dict[str, PrefectFuture] = {}
    last: dict[tuple[str, int], PrefectFuture] = {}  # the latest submitted run of each arm and seed
    for name in selected:
        spec = get_stage(name)
        tags = list(spec.tags)
        if not spec.per_arm:
            results |= collect(submitted)
            submitted, last = {}, {}
            results[name] = stage.with_options(name=name, tags=tags)(name, plain, parent_run_id)
            continue
        for seed in plain["seeds"]:
            for arm in plain["arms"]:
                call = stage.with_options(
                    name=tracking.stage_run_name(name, {"arm": arm, "seed": seed}), tags=tags
                )
                args = (name, {**plain, "seed": int(seed)}, parent_run_id, arm)
                key = run_key(name, arm, seed)
                if slots is None:
                    results[key] = call(*args)
                    continue
                before = last.get((arm, seed))
                submitted[key] = last[(arm, seed)] = call.submit(
                    *args, slots=slots, wait_for=[before] if before else None
                )
    return results | collect(submitted)


def collect(futures: dict[str, PrefectFuture]) -> dict[str, dict]:
    """Every future's result once all are done; the first failure (in submission order) raised."""
    wait(list(futures.values()))
    return {key: future.result() for key, future in futures.items()}


def set_gpu_limit(limit: int) -> None:
    """Make the Prefect API's concurrency limit on the `gpu` tag `limit` (created or replaced)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_concurrency_limit_by_tag(GPU_TAG)
    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(GPU_TAG, limit)
