"""The SEA pipeline as a Prefect flow: each stage is a task running `sea.runner.execute` (the same
function `dvc repro` reaches through `python -m sea <stage>`) inside one MLflow parent run.

    python -m flows.pipeline [--stages world,prepare] [--arms sea,baseline] [--seeds 0,1,2]
                             [--concurrency N] [overrides...]

Data stages (world, backbones, prepare, label) run once; the per-arm stages (align, instruct,
evaluate) run once per seed and arm; `report` compares the arms and the table is printed at the end.
Tasks of GPU stages carry the tag `gpu`, so a work pool or a Prefect concurrency limit on that tag
routes them. `--concurrency N` runs up to N of the arms' stage runs at once, each in its own process
(default: one per CUDA device; one at a time on the CPU, in the flow's process: `flows.stage_runs`);
on the temporary server the flow sets the `gpu` limit to N. When `hardware.num_processes` > 1 a GPU
stage runs under `accelerate launch` (`sea.runner.execute` starts it, for every runner). No Prefect
server is needed (Prefect starts a temporary local one); point `PREFECT_API_URL` at a server to see
runs in its UI, or run the flow as a deployment on a work pool (`prefect.yaml`, README). Caching
belongs to DVC and to the stages' own config-hash check, so tasks use `NO_CACHE`; no retries (a failed
stage is resumed from its checkpoints by running the flow again).
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

from omegaconf import DictConfig

# The temporary local server can take longer than Prefect's default 20 s to start on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from prefect import flow  # noqa: E402

from flows.stage_runs import default_concurrency, run_key, run_stages, set_gpu_limit  # noqa: E402, F401
from sea import tracking  # noqa: E402
from sea.config import ConfigError, compose, to_plain  # noqa: E402
from sea.errors import SeaError  # noqa: E402
from sea.eval.headline import headline_metrics  # noqa: E402
from sea.stages import STAGE_NAMES  # noqa: E402
from sea.stages.checks import check_config  # noqa: E402


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
    concurrency: int | None = None,
) -> tuple[DictConfig, list[str]]:
    """The composed config and the selected stages, every value checked before any stage runs."""
    if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
        raise SeaError(f"--concurrency must be a positive integer, got {concurrency!r}")
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
    concurrency: int | None = None,
) -> dict[str, dict]:
    """Run the selected stages (default: all that apply) in pipeline order, the per-arm stages for
    every seed and arm, up to `concurrency` of those at once (default: `default_concurrency`); return
    the metrics per stage run (keys: `run_key`)."""
    cfg, selected = checked_config(overrides, stages, arms, seeds, concurrency)
    plain = to_plain(cfg)
    with forward_logs("sea"), tracking.pipeline_run(cfg, selected) as parent:
        results = run_stages(selected, plain, parent.run_id, concurrency or default_concurrency(cfg))
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
def temporary_server(gpu_limit: int | None = None) -> Iterator[None]:
    """Prefect's temporary API server for this run, started here, from the main thread, as a child
    that dies with this process even when it is killed with SIGKILL (Prefect's own would outlive it),
    with a concurrency limit of `gpu_limit` on the `gpu` tag. Nothing to do when `PREFECT_API_URL`
    names a server (its limits are its users'), or off Linux."""
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
                if gpu_limit:
                    set_gpu_limit(gpu_limit)
                yield
            finally:  # send the buffered logs and events while the server is still up
                from prefect.events.worker import EventsWorker
                from prefect.logging.handlers import APILogWorker

                APILogWorker.drain_all(timeout=10)
                EventsWorker.drain_all(timeout=10)
    finally:
        server.stop()


def integer(option: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SeaError(f"{option} takes integers, got {text!r}") from None


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
    parser.add_argument(
        "--concurrency",
        metavar="N",
        help="run up to N of the arms' stage runs at once, each in its own process "
        "(default: one per CUDA device; 1 on the CPU: in order, in this process)",
    )
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
        seeds = [integer("--seeds", s) for s in split(args.seeds)] if args.seeds is not None else None
        concurrency = integer("--concurrency", args.concurrency) if args.concurrency is not None else None
        cfg, _ = checked_config(args.overrides, split(args.stages), split(args.arms), seeds, concurrency)
    except (ConfigError, SeaError, ValueError) as err:
        print(f"python -m flows.pipeline: error: {err}", file=sys.stderr)
        return 2
    concurrency = concurrency or default_concurrency(cfg)
    with temporary_server(gpu_limit=concurrency):
        results = sea_pipeline(
            overrides=args.overrides,
            stages=split(args.stages),
            arms=split(args.arms),
            seeds=seeds,
            concurrency=concurrency,
        )
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    if "report" in results:
        from sea.eval.render import read_report_table

        report = Path(cfg.paths.report)
        print(f"\nSEA vs baseline ({report / 'report.md'}):\n\n{read_report_table(report)}")
    elif not args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
