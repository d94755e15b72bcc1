"""The embedded SEA study: does the alignment loss help, and how does its effect depend on label quality?

    python -m flows.study [--seeds 0,1,2,3,4] [--sweep-seeds 0,1] [--doc docs/embedded_study.md] [overrides...]

Two comparisons on the embedded world, from the same data, backbones and labels (the data stages and
any finished training run are reused, e.g. `make run`'s seed 0):

1. `baseline`, `sea` (CLIP labels) and `sea_oracle` (labels from the world's ground truth) for every
   seed of `--seeds`: report under `<paths.root>/study/comparison`;
2. the label-precision sweep, `sea_p10`, `sea_p30`, `sea_p60` (oracle labels corrupted to that
   precision, `align.arm_overrides`) and `sea_oracle` against `baseline` for every seed of
   `--sweep-seeds`: report under `<paths.root>/study/dose`.

Then it writes the study document (`--doc`): both tables with their intervals, the dose-response plot
(SEA's average relative gain over the baseline against label precision, CLIP's measured precision
marked) and the run's wall time. The paragraph that says what the data show is the researcher's to
write under the generated part (kept across reruns, below the marker line).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from flows.pipeline import sea_pipeline
from sea.config import compose

MAIN_ARMS = ("baseline", "sea", "sea_oracle")
SWEEP_ARMS = ("baseline", "sea_p10", "sea_p30", "sea_p60", "sea_oracle")
DEFAULT_DOC = Path(__file__).resolve().parent.parent / "docs" / "embedded_study.md"


def run_study(
    overrides: Sequence[str],
    seeds: Sequence[int],
    sweep_seeds: Sequence[int],
    doc: Path,
    concurrency: int | None = None,
) -> Path:
    from sea.eval.study import write_study_doc

    start = time.monotonic()
    root = Path(compose(list(overrides)).paths.root)
    reports = {"comparison": root / "study" / "comparison", "dose": root / "study" / "dose"}
    sea_pipeline(
        overrides=[*overrides, f"paths.report={reports['comparison']}"],
        arms=list(MAIN_ARMS),
        seeds=list(seeds),
        concurrency=concurrency,
    )
    sea_pipeline(
        overrides=[*overrides, f"paths.report={reports['dose']}"],
        stages=["align", "instruct", "evaluate", "report"],
        arms=list(SWEEP_ARMS),
        seeds=list(sweep_seeds),
        concurrency=concurrency,
    )
    cfg = compose([*overrides, f"arms=[{','.join(SWEEP_ARMS)}]"])
    return write_study_doc(
        doc,
        cfg,
        reports,
        seeds=list(seeds),
        sweep_seeds=list(sweep_seeds),
        seconds=time.monotonic() - start,
        command="make study" + (f' ARGS="{" ".join(overrides)}"' if overrides else ""),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.study", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=tiny")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="training seeds of the main comparison")
    parser.add_argument("--sweep-seeds", default="0,1", help="training seeds of the label-precision sweep")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="where the study document goes")
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="training runs at once, each in its own process (default: one per CUDA device; 1 on the CPU)",
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    sweep = [int(s) for s in args.sweep_seeds.split(",") if s]
    if not seeds or not sweep:
        parser.error("--seeds and --sweep-seeds need at least one seed each")
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be a positive integer")
    path = run_study(args.overrides, seeds, sweep, args.doc, args.concurrency)
    print(f"\nstudy written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
