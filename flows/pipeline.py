"""The SEA pipeline as a Prefect flow: each stage is a task running `sea.runner.execute` (the same
function `dvc repro` reaches through `python -m sea <stage>`) inside one MLflow parent run.

    python -m flows.pipeline [--stages world,prepare] [--arms sea,baseline] [--seeds 0,1,2] [overrides...]

Data stages (world, backbones, prepare, label) run once; the per-arm stages (align, instruct,
evaluate) run once per seed and arm; `report` compares the arms and the table is printed at the end.
Tasks of GPU stages carry the tag `gpu`, so a work pool or a Prefect concurrency limit on that tag
routes them. When `hardware.num_processes` > 1 a GPU stage runs under `accelerate launch`
(`sea.runner.execute` starts it, for every runner). No Prefect server is needed (Prefect starts a
temporary local one); point `PREFECT_API_URL` at a server to see runs in its UI. Caching belongs to
DVC and to the stages' own config-hash check, so tasks use `NO_CACHE`; no retries (a failed stage is
resumed from its checkpoints by running the flow again).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from omegaconf import DictConfig, OmegaConf

# The temporary local server can take longer than Prefect's default 20 s to start on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from sea import tracking  # noqa: E402
from sea.config import ConfigError, compose, to_plain  # noqa: E402
from sea.errors import SeaError  # noqa: E402
from sea.eval.headline import headline_metrics  # noqa: E402
from sea.runner import execute  # noqa: E402
from sea.stages import STAGE_NAMES, get_stage  # noqa: E402
from sea.stages.checks import check_config  # noqa: E402


@task(cache_policy=NO_CACHE, retries=0, persist_result=False)
def stage_task(name: str, cfg: dict, parent_run_id: str | None, arm: str | None = None) -> dict:
    """Plain data in and out: a resolved config dict, a run id, an arm, a metrics dict."""
    return execute(name, OmegaConf.create(cfg), parent_run_id, arm)


def default_stages(cfg: DictConfig) -> list[str]:
    """Every registered stage; `world` only when the data is the embedded shapes world."""
    return [s for s in STAGE_NAMES if s != "world" or cfg.data.source == "world"]


def select_stages(cfg: DictConfig, stages: Sequence[str] | None) -> list[str]:
    if not stages:
        return default_stages(cfg)
    unknown = [s for s in stages if s not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are: {', '.join(STAGE_NAMES)}")
    return [s for s in STAGE_NAMES if s in stages]


def run_key(name: str, arm: str | None = None, seed: int | None = None) -> str:
    """`prepare`, or for a training run `align/sea/seed0`: the keys of the flow's result."""
    return name if arm is None else f"{name}/{arm}/seed{seed}"


def comparison_overrides(
    overrides: Sequence[str] | None, arms: Sequence[str] | None, seeds: Sequence[int] | None
) -> list[str]:
    out = list(overrides or [])
    if arms:
        out.append(f"arms=[{','.join(arms)}]")
    if seeds:
        out.append(f"seeds=[{','.join(str(int(s)) for s in seeds)}]")
    return out


def checked_config(
    overrides: Sequence[str] | None,
    stages: Sequence[str] | None,
    arms: Sequence[str] | None,
    seeds: Sequence[int] | None,
) -> tuple[DictConfig, list[str]]:
    """The composed config and the selected stages, every value checked before any stage runs."""
    if arms is not None and not arms:
        raise SeaError("--arms is empty: name at least one arm")
    if seeds is not None and not seeds:
        raise SeaError("--seeds is empty: name at least one seed")
    cfg = compose(comparison_overrides(overrides, arms, seeds))
    selected = select_stages(cfg, stages)
    check_config(cfg, selected)
    return cfg, selected


@flow(name="sea-pipeline", persist_result=False, log_prints=True)
def sea_pipeline(
    overrides: list[str] | None = None,
    stages: list[str] | None = None,
    arms: list[str] | None = None,
    seeds: list[int] | None = None,
) -> dict[str, dict]:
    """Run the selected stages (default: all that apply) in pipeline order, the per-arm stages for
    every seed and arm; return the metrics per stage run (keys: `run_key`)."""
    cfg, selected = checked_config(overrides, stages, arms, seeds)
    plain = to_plain(cfg)
    results: dict[str, dict] = {}
    with forward_logs("sea"), tracking.pipeline_run(cfg, selected) as parent:
        for name in selected:
            spec = get_stage(name)
            tags = list(spec.tags)
            if not spec.per_arm:
                results[name] = stage_task.with_options(name=name, tags=tags)(name, plain, parent.run_id)
                continue
            for seed in plain["seeds"]:
                for arm in plain["arms"]:
                    task_name = tracking.stage_run_name(name, {"arm": arm, "seed": seed})
                    results[run_key(name, arm, seed)] = stage_task.with_options(name=task_name, tags=tags)(
                        name, {**plain, "seed": int(seed)}, parent.run_id, arm
                    )
        report = Path(plain["paths"]["report"])
        if "report" in selected and report.is_dir():
            comparison = json.loads((report / "comparison.json").read_text(encoding="utf-8"))
            parent.log_metrics(headline_metrics(comparison))
            parent.log_artifact(report, "report")
            publish_report(report, parent, tracking.ui_address(cfg))
    return results


@contextmanager
def forward_logs(name: str) -> Iterator[None]:
    """The project's own log lines (stage progress, warnings) also go to the run's logs in the Prefect UI."""
    import logging

    from prefect.logging.handlers import APILogHandler

    logger, handler = logging.getLogger(name), APILogHandler(level=logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def publish_report(report: Path, parent: tracking.Tracker, ui: str) -> None:
    """The comparison table and links to the MLflow runs, as the flow run's markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    from sea.eval.render import read_report_table

    lines = [f"## SEA vs baseline\n\n{read_report_table(report)}\n", f"Full report: `{report / 'report.md'}`\n"]
    try:  # the links are a convenience: a tracking store that fails now costs them, not the run
        page, children = parent.page_url(ui), parent.child_pages(ui)
    except Exception as err:
        print(f"no MLflow links in the Prefect artifact: {tracking.one_line(err)}", file=sys.stderr)
        page, children = None, {}
    if page:
        lines.append(f"MLflow ({ui}; locally `make mlflow-ui`): [pipeline run]({page})\n")
        lines += [f"- [{name}]({url})" for name, url in children.items()]
    create_markdown_artifact(
        markdown="\n".join(lines), key="sea-comparison", description="SEA vs baseline: the report's table"
    )


def _die_with_parent() -> None:
    """In a child process: get SIGTERM when the parent dies, however it dies (Linux prctl)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@contextmanager
def temporary_server() -> Iterator[None]:
    """Prefect's temporary API server for this run, started here, from the main thread, as a child
    that dies with this process even when it is killed with SIGKILL (Prefect's own would outlive it).
    Nothing to do when `PREFECT_API_URL` names a server, or off Linux."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value() or not sys.platform.startswith("linux"):
        yield
        return
    from prefect.server.api import server as api

    shim = types.SimpleNamespace(**vars(subprocess))
    shim.Popen = functools.partial(subprocess.Popen, preexec_fn=_die_with_parent)
    with mock.patch.object(api, "subprocess", shim):
        server = api.SubprocessASGIServer()
        server.start()
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            try:
                yield
            finally:  # send the buffered logs and events while the server is still up
                from prefect.events.worker import EventsWorker
                from prefect.logging.handlers import APILogWorker

                APILogWorker.drain_all(timeout=10)
                EventsWorker.drain_all(timeout=10)
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=tiny")
    parser.add_argument("--stages", help=f"comma-separated subset of: {','.join(STAGE_NAMES)}")
    parser.add_argument("--arms", help="comma-separated arms (default: the config's `arms`)")
    parser.add_argument("--seeds", help="comma-separated training seeds (default: the config's `seeds`)")
    parser.add_argument("--json", action="store_true", help="print every stage run's metrics as JSON")
    parser.add_argument(
        "--serve",
        metavar="NAME",
        help="serve the flow as a Prefect deployment NAME (needs PREFECT_API_URL) instead of running it",
    )
    args = parser.parse_args(argv)
    if args.serve:
        sea_pipeline.serve(name=args.serve, parameters={"overrides": args.overrides})
        return 0
    split = lambda v: [x for x in v.split(",") if x] if v is not None else None  # noqa: E731
    try:
        seeds = [int(s) for s in split(args.seeds)] if args.seeds is not None else None
        checked_config(args.overrides, split(args.stages), split(args.arms), seeds)
    except (ConfigError, SeaError, ValueError) as err:
        print(f"python -m flows.pipeline: error: {err}", file=sys.stderr)
        return 2
    with temporary_server():
        results = sea_pipeline(
            overrides=args.overrides, stages=split(args.stages), arms=split(args.arms), seeds=seeds
        )
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    if "report" in results:
        from sea.eval.render import read_report_table

        report = Path(compose(comparison_overrides(args.overrides, split(args.arms), seeds)).paths.report)
        print(f"\nSEA vs baseline ({report / 'report.md'}):\n\n{read_report_table(report)}")
    elif not args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
