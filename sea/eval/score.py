"""Score a LLaVA answer file (produced by this project or elsewhere), write a server's upload file, or
read a server's returned scores.

    python -m sea.eval.score pope --answers answers/pope.jsonl --annotations eval/pope/coco \\
        --questions eval/pope/llava_pope_test.jsonl
    python -m sea.eval.score mme --answers mme.jsonl --annotations MME_Benchmark_release_version
    python -m sea.eval.score vizwiz --upload vizwiz.json --answers vizwiz.jsonl --questions llava_test.jsonl
    python -m sea.eval.score vqav2 --server-result evalai_result.json --split test-dev \\
        --into out/evaluate/seed0/sea/scores.json

Scoring prints the metrics as a table (or JSON with `--json`); `--output FILE` also writes the full result
as JSON. An answer file that leaves questions unanswered is refused (exit 2, the count on stderr) unless
`--allow-missing`, which scores it as the scorer documents and still warns on stderr. `--upload FILE`
writes the upload file of LLaVA's conversion script (kinds: `sea.eval.uploads`). `--server-result FILE`
reads the scores a server returned for an upload (`sea.eval.server`); `--into scores.json` puts them into
an `evaluate` output under the benchmark's name (`--name`), where `report` reads them. Exit status 2 with
a one-line message for a problem with the files.
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
from sea.eval.uploads import SERVERS, write_upload
from sea.utils.io import atomic_write_json


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sea.eval.score", description=__doc__.split("\n\n")[0])
    p.add_argument("benchmark", choices=sorted({*SCORERS, *ALIASES, *SERVERS}), help="scorer or upload kind")
    p.add_argument("--answers", help="LLaVA answer file (JSON lines)")
    p.add_argument("--annotations", help="the benchmark's ground-truth file or folder")
    p.add_argument("--questions", help="LLaVA question file (pope; the uploads)")
    p.add_argument("--allow-missing", action="store_true", help="score despite unanswered questions")
    p.add_argument("--split", help="ScienceQA split (default test); the server result's split")
    p.add_argument("--strict", action="store_true", help="sqa: refuse answers of other splits / unknown ids")
    p.add_argument("--upload", help="write the server's upload file here (from --answers, --questions)")
    p.add_argument(
        "--all-questions", help="vqav2 upload: the full test2015 list (llava_vqav2_mscoco_test2015)"
    )
    p.add_argument("--server-result", help="read the scores a server returned (EvalAI JSON, CSV table)")
    p.add_argument("--into", help="with --server-result: the evaluate scores.json to add them to")
    p.add_argument("--name", help="with --into: the benchmark's key in scores.json (default: benchmark)")
    p.add_argument("--output", help="write the full result as JSON here")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p.parse_args(argv)


def _require(args: argparse.Namespace, *names: str) -> None:
    absent = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if absent:
        raise SeaError(f"{args.benchmark}: {' and '.join(absent)} required here")


def _missing_warning(name: str, res: dict[str, Any]) -> str | None:
    counts = res.get("counts") or {}
    missing = counts.get("missing") or 0
    total = counts.get("questions") or counts.get("annotated") or 0
    if not missing:
        return None
    return f"warning: {name}: {missing} of {total} question(s) have no answer (scored with --allow-missing)"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score, upload or ingest per the parsed arguments; returns the result dict."""
    if args.server_result:
        from sea.eval.server import merge_into_scores, read_server_result

        res = read_server_result(args.benchmark, args.server_result, args.split)
        if args.into:
            merge_into_scores(args.into, args.name or args.benchmark, res)
        return res
    if args.upload:
        _require(args, "answers", "questions")
        if args.benchmark not in SERVERS:
            raise SeaError(f"no upload file for {args.benchmark!r}; kinds: {', '.join(sorted(SERVERS))}")
        return write_upload(
            args.benchmark, read_answers(args.answers), args.upload, args.questions,
            all_questions=args.all_questions, allow_missing=args.allow_missing,
        )  # fmt: skip
    name = ALIASES.get(args.benchmark, args.benchmark)
    if name not in SCORERS:
        raise SeaError(f"{args.benchmark} is scored by {SERVERS[name]}: use --upload, then --server-result")
    _require(args, "answers")
    if not (args.annotations or (name == "mmbench" and args.questions)):
        _require(args, "annotations")
    options: dict[str, Any] = {}
    if args.split or args.strict:
        if name != "sqa":
            raise SeaError("--split and --strict apply to sqa only (without --server-result)")
        options |= {"split": args.split} if args.split else {}
        options |= {"strict": True} if args.strict else {}
    return score(
        args.benchmark,
        read_answers(args.answers),
        args.annotations,
        args.questions,
        allow_missing=args.allow_missing,
        **options,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        res = run(args)
    except SeaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    name = ALIASES.get(args.benchmark, args.benchmark)
    if warning := _missing_warning(name, res):
        print(warning, file=sys.stderr)
    if args.output:
        atomic_write_json(args.output, res)
    if args.json or args.upload:  # the per-unit outcomes only in --output's file
        print(json.dumps({k: v for k, v in res.items() if k != "outcomes"}, indent=2, sort_keys=True))
        return 0
    label = Path(args.server_result).name if args.server_result else Path(args.answers).stem
    print(markdown_table({label: flat_metrics({name: res})}))
    if res.get("counts"):
        print("\ncounts: " + ", ".join(f"{k}={v}" for k, v in res["counts"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
