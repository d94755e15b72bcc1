"""An exported model logged as an MLflow pyfunc model (`MlflowTracker.log_llava_model`): a LoggedModel of
its run with a signature, a registry version that `mlflow.pyfunc.load_model` loads and that answers a
question about an image as our model does."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow  # ~20 s of CPU: MLflow validates the input example by loading and running the model
def test_logged_llava_model_answers_like_ours(tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient
    from PIL import Image

    from sea.data.llava import preprocess_image
    from sea.data.templates import build_prompt_for_generation, end_of_turn_ids
    from sea.export.llava import export_llava
    from sea.models.mllm import SeaMLLM
    from sea.models.tiny import build_tiny_mllm
    from sea.tracking import MlflowTracker, _fluent_tracking_uri

    build_tiny_mllm(tmp_path / "build", max_length=256).save_pretrained(tmp_path / "src")
    export_llava(tmp_path / "src", tmp_path / "hf")
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    question = "What is the colour of the shape in the image?"
    example = {"image": base64.b64encode(buf.getvalue()).decode(), "question": question}

    mlflow_uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment)
    tracker = MlflowTracker(client, run.info.run_id)
    uri_before, env_before = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    version = tracker.log_llava_model(tmp_path / "hf", "sea-instruct-sea", example, {"sea.seed": 0})
    assert version == "1"
    # MLflow's global store is left as it was (a pinned default would catch every later stage's runs)
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == (uri_before, env_before)

    # a LoggedModel of the run, with a signature; the registry version points at it
    (logged,) = client.search_logged_models(experiment_ids=[experiment])
    assert logged.source_run_id == run.info.run_id
    mv = client.get_model_version("sea-instruct-sea", "1")
    assert logged.model_id in f"{mv.model_id} {mv.source}", mv.source
    assert mv.run_id == run.info.run_id and mv.tags["sea.seed"] == "0"
    with _fluent_tracking_uri(mlflow_uri):
        info = mlflow.models.get_model_info("models:/sea-instruct-sea/1")
        # the registry version answers as our model does
        model = mlflow.pyfunc.load_model("models:/sea-instruct-sea/1")
    assert [c.name for c in info.signature.inputs.inputs] == ["image", "question"]
    frame = __import__("pandas").DataFrame([example])
    answers = model.predict(frame, params={"max_new_tokens": 8})
    ours = SeaMLLM.load(tmp_path / "src").eval()
    ids = build_prompt_for_generation(
        [{"from": "human", "value": "<image>\n" + question}], ours.tokenizer, "vicuna_v1"
    )
    pixels = preprocess_image(ours.vision, image, "pad")[None]
    stop = end_of_turn_ids(ours.tokenizer, "vicuna_v1")
    expected = ours.tokenizer.decode(
        ours.generate([ids], pixels, 8, stop)[0], skip_special_tokens=True
    ).strip()
    assert list(answers) == [expected] and expected
