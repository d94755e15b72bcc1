"""`evaluate`: the model of one training run (arm, seed) on LLaVA-1.5's benchmarks, plus alignment
diagnostics.

The model is `<eval.models>/seed<seed>/<arm>` (the `instruct` stage's output), or `eval.models.<arm>`
when `eval.models` maps arms to folders. Outputs under `<paths.evaluate>/seed<seed>/<arm>/`:

- `answers/<benchmark>.jsonl`: LLaVA answer files (LLaVA's own scripts can score them);
- `uploads/<benchmark>.{json,xlsx}`: for the benchmarks an evaluation server scores (VQAv2 test-dev,
  VizWiz, MMBench, MM-Vet), the file LLaVA's conversion script writes for that server;
- `scores.json`: per benchmark the scorer's full result (`upload`: its upload file; a benchmark only a
  server scores has empty `metrics` and `server: {name, status: pending}` until
  `python -m sea.eval.score <kind> --server-result FILE --into scores.json` adds the server's scores),
  and the diagnostics;
- `outcomes.json`: per benchmark the per-unit outcomes its headline is computed from
  (`sea.eval.outcomes`), which the report's paired bootstrap resamples;
- `table.md`: one row per metric (also logged to the tracker);
- `diagnostics/nearest_words.txt`: decoded word grids of a few images.

Metrics: `<benchmark>/<metric>` (POPE per split: `pope_<split>/<metric>`), rates in percent, MME in
points; `diagnostics/<name>`; `server_pending/<benchmark>` = 1 for each benchmark awaiting its server.
The `report` stage compares the arms over the seeds.

An answer file that leaves questions of a benchmark unanswered stops the stage (no silent zeros) unless
`eval.allow_missing`, which scores it as the scorer documents and logs the count as a warning.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.config import select
from sea.errors import SeaError
from sea.eval.settings import DiagnosticsSettings
from sea.integrity import check_input
from sea.layout import ADAPTER_FILE, OUTCOMES_FILE, SCORES_FILE, instance_subdir
from sea.stages.base import Stage
from sea.utils.settings import settings_from

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage1Probe:
    """`eval.probe`: caption grounding of the run's stage-1 model (conf/eval/default.yaml)."""

    enabled: bool
    adapters: str | None
    max_images: int
    max_new_tokens: int


@dataclass(frozen=True)
class EvalSettings:
    """`eval` (conf/eval/default.yaml explains every value)."""

    benchmarks: Any  # names in data.eval_sets
    batch_size: int
    max_new_tokens: int
    models: Any  # a folder, or a mapping arm -> folder
    template: str | None
    image_aspect_ratio: str
    device: str | None
    dtype: str | None
    sort_by_length: bool
    allow_missing: bool
    registry: Any  # benchmark -> scorer, upload, suffix, max_new_tokens
    diagnostics: DiagnosticsSettings
    probe: Stage1Probe
    shard_dir: str | None

    @classmethod
    def from_config(cls, section: Any) -> EvalSettings:
        return settings_from(cls, section, "eval")


def _device(settings: EvalSettings) -> str:
    import os

    import torch

    if settings.device:
        return str(settings.device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        return str(PartialState(cpu=not torch.cuda.is_available()).device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def _shard_dir(cfg: DictConfig, settings: EvalSettings, instance: str) -> Path:
    if settings.shard_dir:
        return Path(settings.shard_dir) / instance
    final = Path(select(cfg, "paths.evaluate")) / instance
    return final.parent / f".{final.name}.shards"


def model_folder(models: Any, instance: str, arm: str) -> Path:
    """The saved SeaMLLM to evaluate for this run (see the module docstring)."""
    if not models:
        raise SeaError("eval.models is empty: set it to the instruct stage's folder or map arms to models")
    if isinstance(models, dict):
        if arm not in models:
            raise SeaError(f"eval.models has no model for arm '{arm}' (it maps {sorted(models)})")
        folder = Path(models[arm])
    else:
        folder = Path(models) / instance
    if not (folder / "sea_mllm.json").is_file():
        raise SeaError(f"{folder} is not a saved SeaMLLM folder (no sea_mllm.json); run `instruct` first")
    check_input(folder, "instruct")
    return folder


def stage1_probe(cfg: DictConfig, settings: EvalSettings, instance: str, out: Path) -> dict[str, float]:
    """Caption grounding of the run's stage-1 model (`sea.eval.grounding`) on the world's eval images;
    empty without world ground truth."""
    from sea.data.llava import open_image, preprocess_image
    from sea.eval.grounding import run_probe
    from sea.models.adapter import load_adapter
    from sea.models.mllm import SeaMLLM
    from sea.utils.io import read_jsonl

    probe, d = settings.probe, settings.diagnostics
    gt_path = Path(d.ground_truth) if d.ground_truth else None
    if gt_path is None or not gt_path.is_file():
        log.info("stage-1 probe: no world ground truth at %s: skipped", gt_path)
        return {}
    adapter = Path(str(probe.adapters)) / instance / ADAPTER_FILE
    if not adapter.is_file():  # e.g. an outside model evaluated through an `eval.models` mapping
        log.warning("stage-1 probe: no stage-1 adapter at %s: skipped", adapter)
        return {}
    rows = read_jsonl(gt_path)[: probe.max_images]
    root = Path(d.image_root or gt_path.parent.parent)
    model = SeaMLLM.from_config(cfg, device=_device(settings))
    load_adapter(adapter, model.adapter)
    model.eval()
    aspect = str(select(cfg, "align.image_aspect_ratio"))
    pixels = [preprocess_image(model.vision, open_image(root / r["image"], r["id"]), aspect) for r in rows]
    return run_probe(model, pixels, rows, settings.batch_size, probe.max_new_tokens, out)


def build(cfg: DictConfig, out: Path, arm: str) -> dict:
    import torch

    from sea import tracking
    from sea.eval.batch_generate import (
        AnswerGenerator,
        benchmark_specs,
        process_info,
        run_benchmark,
        score_benchmark,
    )
    from sea.eval.diagnostics import diagnostic_inputs, run_diagnostics
    from sea.eval.report import flat_metrics, markdown_table, metric_name
    from sea.models.mllm import SeaMLLM
    from sea.utils.io import write_json

    ecfg = select(cfg, "eval")
    settings = EvalSettings.from_config(ecfg)
    instance = instance_subdir(select(cfg, "seed"), arm)
    folder = model_folder(settings.models, instance, arm)
    specs = benchmark_specs(ecfg, select(cfg, "data.eval_sets"))
    template = settings.template or select(cfg, "model.llm.template")
    aspect = settings.image_aspect_ratio
    batch_size = settings.batch_size
    proc = process_info()
    model = SeaMLLM.load(folder, device=_device(settings), torch_dtype=settings.dtype)
    model.eval()
    generator = AnswerGenerator(model, template, aspect)
    scores: dict[str, Any] = {}
    outcomes: dict[str, Any] = {}
    for spec in specs:
        path = out / "answers" / f"{spec.name}.jsonl"
        timing = run_benchmark(
            generator,
            spec,
            path,
            model_id=f"{arm}-seed{select(cfg, 'seed')}",
            batch_size=batch_size,
            max_new_tokens=settings.max_new_tokens,
            sort_by_length=settings.sort_by_length,
            proc=proc,
            shard_dir=_shard_dir(cfg, settings, instance) if proc.world_size > 1 else None,
        )
        if proc.is_main:
            scores[spec.name] = score_benchmark(spec, path, settings.allow_missing)
            scores[spec.name]["seconds"] = timing["seconds"]
            if "outcomes" in scores[spec.name]:
                outcomes[spec.name] = scores[spec.name].pop("outcomes")
            if missing := scores[spec.name]["counts"].get("missing"):
                log.warning("%s: %d question(s) have no answer (eval.allow_missing)", spec.name, missing)
    metrics = flat_metrics(scores)
    metrics |= {f"server_pending/{n}": 1.0 for n, r in scores.items() if "server" in r}
    if proc.is_main and settings.diagnostics.enabled:
        inputs = diagnostic_inputs(model, settings.diagnostics, aspect)
        if inputs is not None:
            pixels, captions, rows, words = inputs
            diag, dump = run_diagnostics(
                model,
                pixels,
                words,
                captions,
                rows,
                batch_size=batch_size,
                tacs_k=settings.diagnostics.tacs_k,
                examples=settings.diagnostics.examples,
                word_prefix=str(select(cfg, "align.sea.word_prefix")),
                tokenize=str(select(cfg, "align.sea.tokenize")),
            )
            scores["diagnostics"] = {"metrics": diag, "words": len(words), "images": len(pixels)}
            metrics |= {metric_name("diagnostics", *k.split("/")): v for k, v in diag.items()}
            (out / "diagnostics").mkdir(exist_ok=True)
            (out / "diagnostics" / "nearest_words.txt").write_text(dump + "\n", encoding="utf-8")
    del model, generator
    if proc.is_main and settings.probe.enabled and settings.probe.adapters:
        probe = stage1_probe(cfg, settings, instance, out / "probe")
        if probe:  # a diagnostic of the alignment, reported with the others
            diag = scores.setdefault("diagnostics", {}).setdefault("metrics", {})
            diag |= {f"probe/{k}": v for k, v in probe.items()}
            metrics |= {metric_name("diagnostics", "probe", k): v for k, v in probe.items()}
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if not proc.is_main:
        return {}
    write_json(out / SCORES_FILE, scores)
    compact = json.dumps(outcomes, sort_keys=True, separators=(",", ":"))
    (out / OUTCOMES_FILE).write_text(compact + "\n", encoding="utf-8")
    table = markdown_table({f"{arm} (seed {select(cfg, 'seed')})": metrics})
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    tracker = tracking.current()
    tracker.log_text(table, "evaluate/table.md")
    tracker.log_text(json.dumps(scores, indent=2, sort_keys=True), "evaluate/scores.json")
    for folder in ("answers", "uploads"):
        if (out / folder).is_dir():
            tracker.log_artifact(out / folder, f"evaluate/{folder}")
    log.info("evaluate %s:\n%s", instance, table)
    return metrics


STAGE = Stage(
    name="evaluate",
    help="LLaVA-1.5 benchmarks in LLaVA's formats, scored like LLaVA's scripts, and alignment diagnostics",
    params=(
        "eval.benchmarks",
        "eval.batch_size",
        "eval.max_new_tokens",
        "eval.template",
        "eval.image_aspect_ratio",
        "eval.dtype",
        "eval.sort_by_length",
        "eval.allow_missing",
        "eval.registry",
        "eval.diagnostics",
        "eval.probe.enabled",
        "eval.probe.max_images",
        "eval.probe.max_new_tokens",
        "data.eval_sets",
        "model",
        "align.image_aspect_ratio",  # the stage-1 probe preprocesses images as align did
        "align.sea.word_prefix",
        "align.sea.tokenize",
    ),
    runtime=("eval.device", "eval.shard_dir"),
    out="paths.evaluate",
    build=build,
    deps=(
        "eval.models",
        "eval.diagnostics.wordlist",
        "eval.diagnostics.ground_truth",
        "eval.probe.adapters",
        "paths.backbones",
    ),
    tags=("gpu",),
    per_arm=True,
    scores_for="instruct",
    arm_deps=("eval.models", "eval.probe.adapters"),
)
run = STAGE.run
