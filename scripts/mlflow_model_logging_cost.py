"""What logging the stage models costs (docs/export.md): logs the `align` and `instruct` outputs of a
finished pipeline run, both arms, as the pipeline does (`<stage>.log_model`), into a fresh store, and
prints wall and CPU seconds per model; then loads the sea instruct version and answers a question.

    python -m flows.pipeline experiment=tiny paths.root=/tmp/sea-ui
    .venv/bin/python scripts/mlflow_model_logging_cost.py /tmp/sea-ui [--seed 0]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from sea import tracking
from sea.stages import align, instruct


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", type=Path, help="the pipeline run's paths.root")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default="sea,baseline")
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="sea-model-cost-"))
    uri = f"sqlite:///{store}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("cost", artifact_location=(store / "artifacts").as_uri())
    for arm in args.arms.split(","):
        tracker = tracking.MlflowTracker(client, client.create_run(experiment, run_name=arm).info.run_id)
        for stage in (align, instruct):
            name = stage.STAGE.name
            wall, cpu = time.perf_counter(), cpu_seconds()
            out = args.root / name / f"seed{args.seed}" / arm
            version = stage.log_model(tracker, out, f"cost-{name}-{arm}", {"sea.seed": args.seed})
            print(f"{name}[{arm}] -> version {version}: {time.perf_counter() - wall:.1f} s wall, "
                  f"{cpu_seconds() - cpu:.1f} s CPU", flush=True)  # fmt: skip
    mlflow.set_tracking_uri(uri)
    wall = time.perf_counter()
    model = mlflow.pyfunc.load_model(f"models:/cost-instruct-{args.arms.split(',')[0]}/1")
    answer = model.predict(pd.DataFrame([instruct.example_request()]), params={"max_new_tokens": 8})
    print(f"loaded and answered {answer} in {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    main()
