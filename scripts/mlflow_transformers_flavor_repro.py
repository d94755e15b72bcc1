"""Why the exported LLaVA folder is logged as a pyfunc model and not with MLflow's transformers flavor
(docs/export.md, "Log it as an MLflow model"): tries each way of saving it with `mlflow.transformers`
and prints what happens. Offline, a tiny random model, about a minute on CPU.

    .venv/bin/python scripts/mlflow_transformers_flavor_repro.py
"""

from __future__ import annotations

import tempfile
import traceback
import warnings
from pathlib import Path

import mlflow
import transformers

from sea.export.llava import export_llava
from sea.models.tiny import build_tiny_mllm

REQUIREMENTS = ["transformers", "torch"]  # given: inferring them takes minutes


def attempt(label: str, action) -> None:  # noqa: ANN001
    print(f"\n== {label}")
    try:
        print("   ok:", action())
    except Exception as err:
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"
        print(f"   {type(err).__name__}: {str(err).splitlines()[0][:300]}\n   (raised in {where})")


def main() -> None:
    warnings.filterwarnings("ignore")
    print(f"mlflow {mlflow.__version__}, transformers {transformers.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="sea-tf-flavor-"))
    build_tiny_mllm(tmp / "build", max_length=256).save_pretrained(tmp / "ours")
    hf = tmp / "hf"
    export_llava(tmp / "ours", hf)
    processor = transformers.AutoProcessor.from_pretrained(hf, backend="pil")
    pipe = transformers.pipeline("image-text-to-text", model=str(hf), processor=processor)
    impl = transformers.pipelines.check_task("image-text-to-text")[1]["impl"]
    print(f"transformers' task registry names the pipeline class as {type(impl).__name__} {impl!r}")

    attempt(
        "1. save_model from the folder (task image-text-to-text)",
        lambda: mlflow.transformers.save_model(
            str(hf), str(tmp / "m1"), task="image-text-to-text", pip_requirements=REQUIREMENTS
        ),
    )
    mlflow.transformers.save_model(pipe, str(tmp / "m2"), pip_requirements=REQUIREMENTS)
    print(
        "\n2. save_model from the pipeline: saved, components:",
        mlflow.models.Model.load(tmp / "m2").flavors["transformers"]["components"],
    )
    attempt("2a. transformers.load_model", lambda: mlflow.transformers.load_model(str(tmp / "m2")))
    attempt("2b. pyfunc.load_model", lambda: mlflow.pyfunc.load_model(str(tmp / "m2")))
    mlflow.transformers.save_model(pipe, str(tmp / "m3"), processor=processor, pip_requirements=REQUIREMENTS)
    print("\n3. save_model from the pipeline with processor=: saved")
    attempt("3a. transformers.load_model", lambda: mlflow.transformers.load_model(str(tmp / "m3")))
    attempt("3b. pyfunc.load_model", lambda: mlflow.pyfunc.load_model(str(tmp / "m3")))
    attempt(
        "3c. its predict",
        lambda: mlflow.pyfunc.load_model(str(tmp / "m3")).predict(["USER: <image>\nWhat is it? ASSISTANT:"]),
    )
    attempt(
        "3d. transformers.load_model(return_type='components')",
        lambda: sorted(mlflow.transformers.load_model(str(tmp / "m3"), return_type="components")),
    )


if __name__ == "__main__":
    main()
