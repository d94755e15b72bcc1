"""MLflow tracking: one parent run per pipeline, one child run per stage (explicit `parent_run_id`).

Everything goes through `MlflowClient` with explicit run ids, never the thread-local active run, so
it works the same inside Prefect task threads and in processes launched by `accelerate` or DVC.
A stage reaches its run through `current()`; with `tracking.enabled=false` that is a no-op tracker.

Where runs go: `tracking.uri` if set, else `MLFLOW_TRACKING_URI`, else a local SQLite store under
`tracking.store` (no server). A stage run by the CLI under a pipeline wrapper finds its parent in
`SEA_MLFLOW_PARENT_RUN_ID` (a SEA variable: `MLFLOW_RUN_ID` would make MLflow resume the parent).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.config import config_hash, flatten, to_plain, to_yaml
from sea.errors import SeaError

log = logging.getLogger(__name__)

PARENT_ENV = "SEA_MLFLOW_PARENT_RUN_ID"
# A dead tracking server must fail in seconds, not after MLflow's minutes of HTTP retries; a transient
# outage during training is absorbed by `MlflowTracker`'s buffer instead. Set these to override.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# While the store is unreachable, buffered metrics are retried at most this often.
RETRY_SECONDS = 30.0
# Characters MLflow refuses in metric names become "_".
_METRIC_NAME = re.compile(r"[^\w\-. :/]")
MAX_PARAM_CHARS = 6000


MODEL_ARTIFACT = "model"


def registered_model_name(cfg: DictConfig, stage: str, arm: str) -> str:
    """`<run_name>-<stage>-<arm>`, e.g. `sea-instruct-baseline`."""
    return f"{cfg.run_name}-{stage}-{arm}"


def _tag_values(tags: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): (f"{v:.6g}" if isinstance(v, float) else str(v))[:5000] for k, v in tags.items()}


def metric_key(name: str) -> str:
    """The name MLflow stores a metric under."""
    return _METRIC_NAME.sub("_", name)


class Tracker:
    """The no-op tracker (`tracking=none`); `MlflowTracker` logs for real."""

    run_id: str | None = None
    run_name: str = ""

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, model_id: str | None = None
    ) -> None: ...
    def log_results(self, metrics: Mapping[str, Any], model_id: str | None = None) -> None:
        """A stage's result metrics as single values (see `MlflowTracker.log_results`)."""
    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...
    def log_text(self, text: str, artifact_file: str) -> None: ...
    def set_tags(self, tags: Mapping[str, str]) -> None: ...
    def page_url(self, ui: str) -> str | None:
        """The run's page in the MLflow UI at `ui` (None: nothing is tracked)."""
        return None

    def child_pages(self, ui: str) -> dict[str, str]:
        """Run name -> page in the MLflow UI at `ui`, for this run's child runs."""
        return {}

    def log_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Record what the run read (path -> content fingerprint) as the run's datasets."""

    def log_files_model(self, folder: str | Path, name: str, tags: Mapping[str, Any]) -> str | None: ...
    def log_llava_model(
        self, folder: str | Path, name: str, example: Mapping[str, str], tags: Mapping[str, Any]
    ) -> str | None: ...
    def log_torch_model(
        self, module: Any, name: str, example: Any, tags: Mapping[str, Any], extra_files: Sequence[Path] = ()
    ) -> str | None: ...
    def score_model_version(self, name: str, seed: int, scores: Mapping[str, Any]) -> str | None:
        """Tag the newest version of `name` trained with `seed` with `scores`; its LoggedModel id."""
        return None


class TrackingStoreError(SeaError):
    """The tracking store cannot be reached or written before a stage starts."""


class MlflowTracker(Tracker):
    """Logs to one MLflow run. Metrics are buffered: when the store fails (a server down, a locked SQLite
    file) they stay in memory and are retried at most every `RETRY_SECONDS`; what never gets through
    is saved to `pending` (a JSONL file) when the run closes and sent by the next tracked stage."""

    def __init__(self, client: Any, run_id: str, run_name: str = "", pending: Path | None = None) -> None:
        self.client = client
        self.run_id = run_id
        self.run_name = run_name
        self.pending = pending
        self.buffer: list[Any] = []
        self.retry_at = 0.0
        self._experiment: str | None = None
        self.curves: set[str] = set()  # keys logged with a step (per-step series)

    def experiment_id(self) -> str:
        """The run's experiment (looked up once)."""
        if self._experiment is None:
            self._experiment = self.client.get_run(self.run_id).info.experiment_id
        return self._experiment

    def page_url(self, ui: str) -> str | None:
        experiment = self.experiment_id()
        return f"{ui.rstrip('/')}/#/experiments/{experiment}/runs/{self.run_id}"

    def log_inputs(self, inputs: Mapping[str, Any]) -> None:
        import hashlib

        from mlflow.entities import Dataset, DatasetInput, InputTag

        datasets = [
            DatasetInput(
                Dataset(
                    name=Path(path).name,
                    digest=hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()[:16],
                    source_type="local",
                    source=json.dumps({"uri": Path(path).resolve().as_uri()}),
                ),
                tags=[InputTag("mlflow.data.context", "input")],
            )
            for path, fingerprint in inputs.items()
        ]
        if datasets:
            self.client.log_inputs(self.run_id, datasets=datasets)

    def child_pages(self, ui: str) -> dict[str, str]:
        experiment = self.experiment_id()
        runs = self.client.search_runs([experiment], f"tags.mlflow.parentRunId = '{self.run_id}'")
        return {
            r.info.run_name: f"{ui.rstrip('/')}/#/experiments/{experiment}/runs/{r.info.run_id}"
            for r in sorted(runs, key=lambda r: r.info.start_time)
        }

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, model_id: str | None = None
    ) -> None:
        """Log numbers (others are left out); with `step`, points of per-step series; with `model_id`,
        also as metrics of that LoggedModel (its page in the UI lists them)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [
            Metric(metric_key(key), float(value), now, step or 0, model_id=model_id)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ]
        if step is not None:
            self.curves.update(m.key for m in rows)
        self.buffer += rows
        self.flush()

    def log_results(self, metrics: Mapping[str, Any], model_id: str | None = None) -> None:
        """A stage's result metrics as single values, one series per quantity: a result that is the last
        point of a series this run logged (`loss` of the `train/loss` curve) is left to the series."""
        single = {k: v for k, v in metrics.items() if not self.is_curve(metric_key(k))}
        self.log_metrics(single, model_id=model_id)

    def is_curve(self, key: str) -> bool:
        """`key`, or `key` under a prefix (`train/<key>`), is a per-step series of this run."""
        return any(c == key or c.endswith("/" + key) for c in self.curves)

    def flush(self, force: bool = False) -> bool:
        """Send the buffered metrics; False (with a warning on the first failure) if the store fails."""
        if not self.buffer or (not force and time.monotonic() < self.retry_at):
            return not self.buffer
        try:
            while self.buffer:
                self.client.log_batch(self.run_id, metrics=self.buffer[:1000])
                del self.buffer[:1000]
        except Exception as err:  # any store failure: keep the metrics, keep training
            if self.retry_at == 0.0:
                log.warning("tracking: cannot log metrics (%s); kept and retried", one_line(err))
            self.retry_at = time.monotonic() + RETRY_SECONDS
            return False
        return True

    def close(self) -> None:
        """Last try to send the buffer; what remains goes to the pending file."""
        if self.flush(force=True) or self.pending is None:
            return
        self.pending.parent.mkdir(parents=True, exist_ok=True)
        with self.pending.open("a", encoding="utf-8") as f:
            for m in self.buffer:
                row = {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
                f.write(json.dumps(row) + "\n")
        log.warning(
            "tracking: %d metric values did not reach the store; saved in %s, sent by the next tracked stage",
            len(self.buffer),
            self.pending,
        )
        self.buffer.clear()

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        rows = [Param(key, str(value)[:MAX_PARAM_CHARS]) for key, value in params.items()]
        for i in range(0, len(rows), 100):
            self.client.log_batch(self.run_id, params=rows[i : i + 100])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_files_model(self, folder: str | Path, name: str, tags: Mapping[str, Any]) -> str | None:
        """Log `folder` as the files of a LoggedModel of this run (no flavor: our own loader reads it) and
        register it as a new version of `name`; the version number."""
        logged = self.client.create_logged_model(
            self.experiment_id(), MODEL_ARTIFACT, source_run_id=self.run_id, tags=_tag_values(tags)
        )
        self.client.log_model_artifacts(logged.model_id, str(folder))
        self.client.finalize_logged_model(logged.model_id, "READY")
        from mlflow.entities import LoggedModelOutput

        self.client.log_outputs(self.run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return self._register(name, f"models:/{logged.model_id}", logged.model_id, tags)

    def log_llava_model(
        self, folder: str | Path, name: str, example: Mapping[str, str], tags: Mapping[str, Any]
    ) -> str | None:
        """Log an exported LLaVA folder (`sea export`) as an MLflow pyfunc model of this run (a LoggedModel
        with signature and input example: a base64 `image` and a `question` in, the `answer` out) and
        register it as a new version of `name`; the version number."""
        import mlflow
        from mlflow.models import infer_signature

        frame = _example_frame(example)
        signature = infer_signature(frame, ["an answer"], params={"max_new_tokens": LLAVA_MAX_NEW_TOKENS})
        return self._log_flavor(
            mlflow.pyfunc,
            LLAVA_MODEL_NAME,
            name,
            tags,
            python_model=_llava_question_answerer(),
            artifacts={"llava": str(folder)},
            signature=signature,
            input_example=(frame, {"max_new_tokens": 4}),
            pip_requirements=list(LLAVA_REQUIREMENTS),
        )

    def log_torch_model(
        self, module: Any, name: str, example: Any, tags: Mapping[str, Any], extra_files: Sequence[Path] = ()
    ) -> str | None:
        """Log a plain torch module (MLflow's pytorch flavor; `mlflow.pytorch.load_model` returns it, pyfunc
        maps arrays) as a LoggedModel of this run, with a signature from the float array `example` (every
        axis but the last free), and register it as a new version of `name`; the version number."""
        import mlflow.pytorch
        import numpy as np
        import torch
        from mlflow.models import ModelSignature
        from mlflow.types import Schema, TensorSpec

        with torch.no_grad():
            output = module(torch.as_tensor(example)).numpy()

        def spec(array: Any) -> Schema:
            return Schema([TensorSpec(np.dtype(array.dtype), (-1,) * (array.ndim - 1) + (array.shape[-1],))])

        return self._log_flavor(
            mlflow.pytorch,
            MODEL_ARTIFACT,
            name,
            tags,
            pytorch_model=module,
            signature=ModelSignature(spec(example), spec(output)),
            input_example=example,
            extra_files=[str(p) for p in extra_files],
            pip_requirements=["torch"],
        )

    def _log_flavor(
        self, flavor: Any, model_name: str, name: str, tags: Mapping[str, Any], **kwargs: Any
    ) -> str:
        """`Model.log` for this run, in the run's experiment and store (MLflow would take the active
        ones), registered as a new version of `name` tagged with `tags`; the version number."""
        from mlflow.models import Model

        logged = self.client.create_logged_model(
            self.experiment_id(), model_name, source_run_id=self.run_id, tags=_tag_values(tags)
        )
        with _fluent_tracking_uri(self.client.tracking_uri):
            info = Model.log(
                None,  # artifact_path: superseded by `name`
                flavor,
                name=model_name,
                run_id=self.run_id,
                model_id=logged.model_id,
                registered_model_name=name,
                **kwargs,
            )
        version = str(info.registered_model_version)
        for key, value in _tag_values(tags).items():
            self.client.set_model_version_tag(name, version, key, value)
        return version

    def _register(self, name: str, source: str, model_id: str, tags: Mapping[str, Any]) -> str:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        with _fluent_tracking_uri(self.client.tracking_uri):  # the registry looks the model up there
            version = self.client.create_model_version(
                name, source, run_id=self.run_id, tags=_tag_values(tags), model_id=model_id
            )
        return str(version.version)

    def score_model_version(self, name: str, seed: int, scores: Mapping[str, Any]) -> str | None:
        """Tag the newest version of `name` trained with `seed` with `scores` (the registry page shows
        them); the version's LoggedModel id, to log the scores against (None: no such version)."""
        versions = [
            v
            for v in self.client.search_model_versions(f"name='{name}'")
            if v.tags.get("sea.seed") == str(seed)
        ]
        if not versions:
            log.warning("no registered version of %s with seed %s to add scores to", name, seed)
            return None
        newest = max(versions, key=lambda v: int(v.version))
        for key, value in _tag_values(scores).items():
            self.client.set_model_version_tag(name, newest.version, key, value)
        return logged_model_id(newest)


def logged_model_id(version: Any) -> str | None:
    """The LoggedModel a registry version points at: its `model_id`, or (a SQL registry stores none)
    the id in its source `models:/<model_id>`; None for a version made from run artifacts."""
    source = str(version.source or "")
    return version.model_id or (source.removeprefix("models:/") if source.startswith("models:/m-") else None)


@contextmanager
def _fluent_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's global tracking URI set to `uri` inside the block (`Model.log` takes no store), and after
    it exactly as before, `MLFLOW_TRACKING_URI` included: restoring `mlflow.get_tracking_uri()` would
    pin its default (`sqlite:///mlflow.db` in the working directory) for every later stage."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    env = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


LLAVA_MODEL_NAME = "llava"
LLAVA_MAX_NEW_TOKENS = 64
LLAVA_REQUIREMENTS = ("torch", "transformers", "pillow", "pandas")


def _example_frame(example: Mapping[str, str]) -> Any:
    import pandas as pd

    return pd.DataFrame([{"image": str(example["image"]), "question": str(example["question"])}])


def _llava_question_answerer() -> Any:
    """A pyfunc model that answers questions about images with an exported LLaVA folder (artifact
    `llava`), greedily, through transformers alone: rows of `image` (base64 image file) and `question`
    in, one answer per row out. Built here so that `sea` imports MLflow only in this module; MLflow
    stores the class by value, so loading it needs no `sea`."""
    import mlflow.pyfunc

    class LlavaQuestionAnswerer(mlflow.pyfunc.PythonModel):
        def load_context(self, context: Any) -> None:
            from transformers import AutoProcessor, LlavaForConditionalGeneration

            path = context.artifacts["llava"]
            self.model = LlavaForConditionalGeneration.from_pretrained(path).eval()
            self.processor = AutoProcessor.from_pretrained(path, backend="pil")

        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - no hints: MLflow
            # would read them as the input schema
            import base64
            import io

            import torch
            from PIL import Image

            max_new = int((params or {}).get("max_new_tokens", LLAVA_MAX_NEW_TOKENS))
            answers = []
            for image_b64, question in zip(model_input["image"], model_input["question"], strict=True):
                image = Image.open(io.BytesIO(base64.b64decode(image_b64))).convert("RGB")
                content = [{"type": "image", "image": image}, {"type": "text", "text": str(question)}]
                inputs = self.processor.apply_chat_template(
                    [{"role": "user", "content": content}],
                    add_generation_prompt=True,
                    tokenize=True,
                    return_dict=True,
                    return_tensors="pt",
                )
                with torch.no_grad():
                    out = self.model.generate(**inputs, max_new_tokens=max_new, do_sample=False)
                new = out[0, inputs["input_ids"].shape[1] :]
                answers.append(self.processor.decode(new, skip_special_tokens=True).strip())
            return answers

    return LlavaQuestionAnswerer()


_NO_TRACKING = Tracker()
_current: ContextVar[Tracker | None] = ContextVar("sea_tracker", default=None)


def current() -> Tracker:
    """The tracker of the stage being run (a no-op outside a tracked stage)."""
    return _current.get() or _NO_TRACKING


def ui_address(cfg: DictConfig) -> str:
    """Where a user opens the MLflow UI for these runs: the tracking server itself, or the local
    `make mlflow-ui` (port 5000) over the SQLite store."""
    uri = tracking_uri(cfg)
    return uri if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"


def tracking_uri(cfg: DictConfig) -> str:
    uri = cfg.tracking.get("uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return str(uri)
    store = Path(cfg.tracking.store).resolve()
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store}/mlflow.db"


def _client_and_experiment(cfg: DictConfig) -> tuple[Any, str]:
    from mlflow import MlflowClient

    uri = tracking_uri(cfg)
    client = MlflowClient(tracking_uri=uri)
    name = cfg.tracking.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return client, experiment.experiment_id
    artifacts = None
    if uri.startswith("sqlite:///"):  # beside the database, never MLflow's default ./mlruns of the cwd
        artifacts = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "artifacts").as_uri()
    # The kind MLflow 3 reads to show an experiment's runs and models rather than its GenAI views (3.17's
    # UI lets its GenAI / Model training switch decide instead: README, MLflow).
    return client, client.create_experiment(
        name, artifact_location=artifacts, tags={"mlflow.experimentKind": "custom_model_development"}
    )


def lineage_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """`tags` plus the context tags `mlflow.start_run` sets (the same function: source name and type, git
    commit, branch and remote of the entry script, user), which the run page shows as "Source", "Git
    commit" and "User". An entry script outside a git checkout (pytest) gets the working directory's
    commit."""
    from mlflow.tracking.context.registry import resolve_tags

    resolved = resolve_tags(dict(tags))
    if (sha := _git_sha()) != "unknown":
        resolved.setdefault("mlflow.source.git.commit", sha)
    return resolved


def _git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}"


def sync_pending(client: Any, folder: Path) -> None:
    """Send metrics a run could not log when it ran (`MlflowTracker.close`); a file stays on failure."""
    from mlflow.entities import Metric

    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        try:
            for i in range(0, len(rows), 1000):
                client.log_batch(path.stem, metrics=[Metric(**r) for r in rows[i : i + 1000]])
        except Exception as err:  # still unreachable: try again next time
            log.warning("tracking: pending metrics %s not sent yet (%s)", path, one_line(err))
            return
        path.unlink()
        log.info("tracking: sent %d pending metric values of run %s", len(rows), path.stem)


@contextmanager
def _run(cfg: DictConfig, run_name: str, tags: dict[str, str]) -> Iterator[Tracker]:
    """Create a run, yield its tracker, and close it FINISHED or FAILED (also on SIGTERM, which the
    CLI turns into an exception). A store that fails before the run starts is a one-line error."""
    if not cfg.tracking.enabled:
        tracker = Tracker()
        tracker.run_name = run_name
        yield tracker
        return
    pending = Path(cfg.tracking.store) / "pending"
    try:
        client, experiment_id = _client_and_experiment(cfg)
        tags = lineage_tags({"sea.git_sha": _git_sha(), "sea.config_hash": config_hash(cfg), **tags})
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
        sync_pending(client, pending)
    except Exception as err:
        raise TrackingStoreError(
            f"tracking store {tracking_uri(cfg)} is unusable ({one_line(err)}); fix it, or run with "
            "tracking=none"
        ) from err
    tracker = MlflowTracker(client, run.info.run_id, run_name, pending / f"{run.info.run_id}.jsonl")
    status = "FAILED"
    try:
        yield tracker
        status = "FINISHED"
    finally:
        tracker.close()
        try:
            client.set_terminated(run.info.run_id, status=status)
        except Exception as err:  # the outputs are safe; only the run's status is lost
            log.warning("tracking: could not mark run %s %s (%s)", run.info.run_id, status, one_line(err))


@contextmanager
def pipeline_run(cfg: DictConfig, stages: list[str]) -> Iterator[Tracker]:
    """The parent run of one pipeline run: full config as params and as `config.yaml`."""
    with _run(cfg, cfg.run_name, {"sea.kind": "pipeline", "sea.stages": ",".join(stages)}) as tracker:
        tracker.log_params(flatten(to_plain(cfg)))
        tracker.log_text(to_yaml(cfg), "config.yaml")
        yield tracker


def stage_run_name(stage: str, run: Mapping[str, Any] | None = None) -> str:
    """`align`, or for a per-arm stage `align[sea, seed 0]`."""
    return f"{stage}[{run['arm']}, seed {run['seed']}]" if run else stage


@contextmanager
def stage_run(
    cfg: DictConfig,
    stage: str,
    params: dict[str, Any],
    parent_run_id: str | None = None,
    run: Mapping[str, Any] | None = None,
) -> Iterator[Tracker]:
    """A child run for one stage under `parent_run_id` (or `$SEA_MLFLOW_PARENT_RUN_ID`, or top level).

    `run` ({"arm": ..., "seed": ...}) names the training run of a per-arm stage; it becomes the tags
    `sea.arm` / `sea.seed`, so the UI can filter and compare the arms (README: comparing arms).
    Logs the stage's own params flattened and the resolved config as `config.yaml`; the stage's
    metrics are logged by the caller. `current()` returns this run's tracker inside the block.
    """
    parent_run_id = parent_run_id or os.environ.get(PARENT_ENV)
    tags = {"sea.kind": "stage", "sea.stage": stage}
    if run:
        tags |= {"sea.arm": str(run["arm"]), "sea.seed": str(run["seed"])}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    with _run(cfg, stage_run_name(stage, run), tags) as tracker:
        try:
            tracker.log_params(flatten(params))
            tracker.log_text(to_yaml(cfg), "config.yaml")
        except Exception as err:
            raise TrackingStoreError(
                f"tracking store {tracking_uri(cfg)} is unusable ({one_line(err)}); fix it, or run with "
                "tracking=none"
            ) from err
        token = _current.set(tracker)
        try:
            yield tracker
        finally:
            _current.reset(token)
