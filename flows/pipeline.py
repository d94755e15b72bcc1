"""The SEA pipeline as a Prefect flow: each stage is a task running `sea.runner.execute` (the same
function `dvc repro` reaches through `python -m sea <stage>`) inside one MLflow parent run.

    python -m flows.pipeline [--stages world,prepare] [hydra overrides...]

No Prefect server is needed (Prefect starts a temporary local one); point `PREFECT_API_URL` at a
server to see runs in its UI. Caching belongs to DVC and to the stages' own config-hash check, so
tasks use `NO_CACHE`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from sea import tracking
from sea.config import compose, to_plain
from sea.runner import execute
from sea.stages import STAGE_NAMES, get_stage


@task(cache_policy=NO_CACHE, retries=0, persist_result=False)
def stage_task(name: str, cfg: dict, parent_run_id: str | None) -> dict:
    """Plain data in and out: a resolved config dict, a run id, a metrics dict."""
    return execute(name, OmegaConf.create(cfg), parent_run_id)


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


@flow(name="sea-pipeline", persist_result=False, log_prints=True)
def sea_pipeline(overrides: list[str] | None = None, stages: list[str] | None = None) -> dict[str, dict]:
    """Run the selected stages (default: all that apply) in pipeline order; return their metrics."""
    cfg = compose(overrides or [])
    selected = select_stages(cfg, stages)
    plain = to_plain(cfg)
    results: dict[str, dict] = {}
    with tracking.pipeline_run(cfg, selected) as parent:
        for name in selected:
            spec = get_stage(name)
            results[name] = stage_task.with_options(name=name, tags=list(spec.tags))(
                name, plain, parent.run_id
            )
        parent.log_metrics({f"{s}/{k}": v for s, m in results.items() for k, v in m.items()})
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=tiny")
    parser.add_argument("--stages", help=f"comma-separated subset of: {','.join(STAGE_NAMES)}")
    args = parser.parse_args(argv)
    stages = args.stages.split(",") if args.stages else None
    results = sea_pipeline(overrides=args.overrides, stages=stages)
    print(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
