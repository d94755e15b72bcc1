"""Score a LLaVA answer file, produced by this project or elsewhere.

    python -m sea.eval.score pope --answers answers/pope.jsonl --annotations eval/pope/coco \\
        --questions eval/pope/llava_pope_test.jsonl
    python -m sea.eval.score mme --answers mme.jsonl --annotations MME_Benchmark_release_version

Prints the metrics as a table (or JSON with `--json`); `--output FILE` also writes the full result as
JSON. Exit status 2 with a one-line message for a problem with the files (see `sea.eval.scorers`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.answers import read_answers
from sea.eval.report import flat_metrics, markdown_table
from sea.eval.scorers import ALIASES, SCORERS, score
from sea.utils.io import atomic_write_json


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sea.eval.score", description=__doc__.split("\n\n")[0])
    p.add_argument("benchmark", choices=sorted([*SCORERS, *ALIASES]), help="which scorer")
    p.add_argument("--answers", required=True, help="LLaVA answer file (JSON lines)")
    p.add_argument("--annotations", required=True, help="the benchmark's ground-truth file or folder")
    p.add_argument("--questions", help="LLaVA question file (needed by pope)")
    p.add_argument("--allow-missing", action="store_true", help="score despite unanswered questions")
    p.add_argument("--split", help="ScienceQA split (default test)")
    p.add_argument("--output", help="write the full result as JSON here")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score per the parsed arguments; returns the result dict."""
    options: dict[str, Any] = {}
    if args.split:
        if ALIASES.get(args.benchmark, args.benchmark) != "sqa":
            raise SeaError("--split applies to sqa only")
        options["split"] = args.split
    return score(
        args.benchmark,
        read_answers(args.answers),
        args.annotations,
        args.questions,
        allow_missing=True if args.allow_missing else None,
        **options,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        res = run(args)
    except SeaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.output:
        atomic_write_json(args.output, res)
    if args.json:  # the per-unit outcomes only in --output's file
        print(json.dumps({k: v for k, v in res.items() if k != "outcomes"}, indent=2, sort_keys=True))
    else:
        name = ALIASES.get(args.benchmark, args.benchmark)
        print(markdown_table({Path(args.answers).stem: flat_metrics({name: res})}))
        print("\ncounts: " + ", ".join(f"{k}={v}" for k, v in res["counts"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
