"""The arms' stage runs are scheduled concurrently, each after its own arm's previous stage, and a
Prefect concurrency limit on the `gpu` tag decides how many run at once: they overlap in time when it
allows two and never when it is 1. Here each stage run is a timed run in its slot (the real stages,
concurrent against serial: the slow test at the end)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.stage_runs import RunSlots, run_key, run_stages, set_gpu_limit
from sea.config import to_plain

SPANS: dict[str, tuple[float, float, dict]] = {}  # run key -> (start, end, the slot's environment)
STARTED = threading.Condition()
RENDEZVOUS = 10.0  # seconds an align run waits for the other arm's align to start (only when it can)


@task(cache_policy=NO_CACHE, persist_result=False)
def timed_run(name: str, cfg: dict, parent_run_id, arm=None, slots: RunSlots | None = None) -> dict:
    """A stage run's place in the schedule, recorded. An align run holds its slot until the other
    arm's align has started too (at most RENDEZVOUS s), so that a limit that lets them run at once shows
    on a busy machine; `fail` arms raise."""
    assert slots is not None, "concurrent runs get slots"
    key = run_key(name, arm, cfg["seed"])
    with slots.take() as env:
        start = time.monotonic()
        with STARTED:
            SPANS[key] = (start, start, env)
            STARTED.notify_all()
            if name == "align":
                STARTED.wait_for(lambda: sum(k.startswith("align/") for k in SPANS) == 2, timeout=RENDEZVOUS)
        time.sleep(0.2)
        if arm in cfg.get("fail", ()):
            del SPANS[key]
            raise RuntimeError(f"{name}[{arm}] failed")
        with STARTED:
            SPANS[key] = (start, time.monotonic(), env)
    return {"seconds": time.monotonic() - start}


@flow(persist_result=False)
def schedule(plain: dict, concurrency: int) -> dict:
    return run_stages(["align", "instruct"], plain, None, concurrency, stage=timed_run)


def overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.fixture
def plain(tiny_cfg) -> dict:
    SPANS.clear()
    return to_plain(tiny_cfg)


@pytest.fixture
def gpu_limit(prefect_server):
    from prefect.client.orchestration import get_client

    yield set_gpu_limit
    with get_client(sync_client=True) as client:
        client.delete_concurrency_limit_by_tag("gpu")


@pytest.mark.parametrize("limit", [2, 1])
def test_arms_overlap_only_when_the_gpu_limit_allows(plain, gpu_limit, limit: int):
    import torch

    gpu_limit(limit)
    results = schedule(plain, concurrency=2)
    keys = [run_key(stage, arm, 0) for stage in ("align", "instruct") for arm in ("sea", "baseline")]
    assert sorted(results) == sorted(keys) == sorted(SPANS)
    for arm in ("sea", "baseline"):  # each arm's instruct starts after its own align ended
        assert SPANS[run_key("instruct", arm, 0)][0] >= SPANS[run_key("align", arm, 0)][1]
    aligns = SPANS[run_key("align", "sea", 0)], SPANS[run_key("align", "baseline", 0)]
    if limit == 2:
        assert overlap(*aligns), aligns
    else:
        spans = sorted(SPANS.values(), key=lambda span: span[0])
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    threads = str(torch.get_num_threads())  # a run in its own process computes with the flow's threads
    assert {span[2]["OMP_NUM_THREADS"] for span in SPANS.values()} == {threads}
    assert not any("CUDA_VISIBLE_DEVICES" in span[2] for span in SPANS.values()), "no CUDA device here"


def test_a_failed_arm_stops_its_own_chain_and_fails_the_flow(plain, gpu_limit):
    gpu_limit(2)
    with pytest.raises(RuntimeError, match=r"align\[baseline\] failed"):
        schedule({**plain, "fail": ["baseline"]}, concurrency=2)
    assert sorted(SPANS) == [run_key("align", "sea", 0), run_key("instruct", "sea", 0)]


def without_timing(metrics: dict) -> dict:
    """A run's metrics less its speeds and durations (`seconds`, `step_s`, `tokens_per_s`, ...)."""
    return {k: v for k, v in metrics.items() if not k.endswith(("seconds", "_s"))}


@pytest.mark.slow
@pytest.mark.long
def test_concurrent_stage_runs_compute_what_serial_ones_do(tiny_overrides, tiny_cfg, gpu_limit, tmp_path):
    """The tiny pipeline in order, then its per-arm stages again, two at a time in their own processes
    (into other folders): the same metrics, the same report table, and the arms' runs overlapped."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.pipeline import sea_pipeline
    from sea.eval.render import read_report_table

    serial = sea_pipeline(overrides=tiny_overrides, concurrency=1)
    again = tmp_path / "concurrent"
    moved = [f"paths.{p}={again / p}" for p in ("align", "instruct", "evaluate", "report")]
    gpu_limit(2)
    state = sea_pipeline(
        overrides=[*tiny_overrides, *moved],
        stages=["align", "instruct", "evaluate", "report"],
        concurrency=2,
        return_state=True,
    )
    concurrent = state.result()
    per_arm = [k for k in serial if "/" in k]
    assert sorted(per_arm) == sorted(k for k in concurrent if k != "report") and len(per_arm) == 6
    for key in per_arm:
        assert without_timing(concurrent[key]) == without_timing(serial[key]), key
    assert read_report_table(again / "report") == read_report_table(Path(tiny_cfg.paths.report))

    flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        runs = {t.name.rsplit("-", 1)[0]: t for t in client.read_task_runs(flow_run_filter=flow_run)}
    sea, base = runs["align[sea, seed 0]"], runs["align[baseline, seed 0]"]
    assert sea.start_time < base.end_time and base.start_time < sea.end_time, "the arms ran at once"
    assert runs["instruct[sea, seed 0]"].start_time >= sea.end_time
