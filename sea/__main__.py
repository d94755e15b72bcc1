"""`python -m sea <stage> [overrides...]`: run one pipeline stage (what `dvc.yaml` calls).

`python -m sea export SRC OUT`: a saved model as a transformers LLaVA folder (`sea.export.cli`)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from sea.stages import STAGE_NAMES, get_stage

USAGE_EPILOG = """\
overrides use Hydra's syntax: key=value, group=option (e.g. experiment=tiny paths.root=/tmp/run).
With --params FILE the composed config is read from FILE (DVC's params.yaml) and only key=value
overrides apply. Every stage writes <paths.metrics>/<stage>.json and logs to MLflow (tracking=none: off).
Per-arm stages (align, instruct, evaluate) run one training run per arm of `arms` at `seed`
(--arm picks one) and write <paths.metrics>/<stage>/seed<seed>-<arm>.json.

other commands:
  export SRC OUT  a saved model (e.g. <root>/instruct/seed0/<arm>) as a transformers LLaVA folder
                  (`sea export --help`)
"""


def _stage_list() -> str:
    return "stages (in pipeline order):\n" + "\n".join(
        f"  {name:<10} {get_stage(name).help}" for name in STAGE_NAMES
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sea",
        description="Run one stage of the SEA pipeline.",
        epilog=_stage_list() + "\n\n" + USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stage", help="the stage to run (listed below)")
    parser.add_argument("overrides", nargs="*", help="config overrides")
    parser.add_argument("--arm", help="per-arm stages: run this arm only (default: every arm of `arms`)")
    parser.add_argument("--params", metavar="FILE", help="read the composed config from FILE")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for expected errors")
    parser.add_argument("--json", action="store_true", help="print the stage's metrics as JSON")
    return parser


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        from sea.export.cli import main as export_main

        return export_main(argv[1:])
    args = build_parser().parse_intermixed_args(argv)
    if args.stage not in STAGE_NAMES:
        print(
            f"sea: unknown stage '{args.stage}'. Stages: {', '.join(STAGE_NAMES)} (see `sea --help`)",
            file=sys.stderr,
        )
        return 2

    from sea.config import ConfigError, compose, load_params
    from sea.errors import SeaError
    from sea.stages.checks import check_config

    try:
        cfg = load_params(args.params, args.overrides) if args.params else compose(args.overrides)
        check_config(cfg, [args.stage])
    except (ConfigError, SeaError) as err:
        print(f"sea: bad config: {err}", file=sys.stderr)
        return 2

    setup_logging()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:  # SIGTERM unwinds: the stage's MLflow run ends FAILED, its temp folder goes
        return _run_stage(args, cfg)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run_stage(args: argparse.Namespace, cfg: Any) -> int:
    from sea.errors import SeaError
    from sea.runner import execute

    stage = get_stage(args.stage)
    if args.arm and not stage.per_arm:
        print(f"sea: stage '{args.stage}' does not run per arm (no --arm)", file=sys.stderr)
        return 2
    try:
        if stage.per_arm:
            arms = [args.arm] if args.arm else [str(a) for a in cfg.arms]
            metrics = {arm: execute(args.stage, cfg, arm=arm) for arm in arms}
        else:
            metrics = execute(args.stage, cfg)
    except SeaError as err:
        if args.debug:
            raise
        print(f"sea {args.stage}: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    else:  # one line per run: DVC and shell users see where the numbers are, not all of them
        runs = metrics.items() if stage.per_arm else [(None, metrics)]
        for arm, values in runs:
            name = f"{args.stage}[{arm}]" if arm else args.stage
            print(f"sea {name}: done, {len(values)} metrics in {stage.metrics_file(cfg, arm)}")
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
