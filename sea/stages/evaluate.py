"""`evaluate`: every model of `eval.models` on LLaVA-1.5's benchmarks, plus alignment diagnostics.

Outputs under `paths.evaluate`:

- `answers/<arm>/<benchmark>.jsonl`: LLaVA answer files (LLaVA's own scripts can score them);
- `scores.json`: per arm, per benchmark the scorer's full result, and the diagnostics;
- `table.md`: one row per metric, one column per arm (also logged to the tracker);
- `diagnostics/<arm>_nearest_words.txt`: decoded word grids of a few images.

Metrics: `<arm>/<benchmark>/<metric>` (POPE per split: `<arm>/pope_<split>/<metric>`), rates in percent,
MME in points; `<arm>/diagnostics/<name>`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.errors import SeaError
from sea.stages.base import Stage, select

log = logging.getLogger(__name__)


def _select_or(cfg: DictConfig, key: str, default: Any = None) -> Any:
    try:
        value = select(cfg, key)
    except KeyError:
        return default
    return default if value is None else value


def _device(ecfg: dict[str, Any]) -> str:
    import os

    import torch

    if ecfg.get("device"):
        return str(ecfg["device"])
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        return str(PartialState(cpu=not torch.cuda.is_available()).device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def _shard_dir(cfg: DictConfig, ecfg: dict[str, Any]) -> Path:
    if ecfg.get("shard_dir"):
        return Path(ecfg["shard_dir"])
    final = Path(select(cfg, "paths.evaluate"))
    return final.parent / f".{final.name}.shards"


def diagnostic_inputs(
    model: Any, dcfg: dict[str, Any], aspect: str
) -> tuple[list[Any], list[str] | None, list[dict] | None, list[str]] | None:
    """(pixels, captions, world ground-truth rows or None, words) for the diagnostics, or None when
    there is nothing to run them on (see conf/eval/default.yaml)."""
    from sea.eval.answers import read_json, read_jsonl
    from sea.eval.diagnostics import read_wordlist, world_caption, world_words
    from sea.eval.runner import EvalQuestion as Q
    from sea.eval.runner import open_image, preprocess_image

    limit = int(dcfg.get("max_images") or 64)
    gt_path = Path(dcfg["ground_truth"]) if dcfg.get("ground_truth") else None
    rows: list[dict] | None = None
    if gt_path is not None and gt_path.is_file():
        rows = read_jsonl(gt_path)[:limit]
        root = Path(dcfg.get("image_root") or gt_path.parent.parent)
        images = [open_image(Q(r["id"], "", "", image=r["image"]), root) for r in rows]
        captions = [world_caption(r) for r in rows]
    elif dcfg.get("captions"):
        samples = read_json(dcfg["captions"])[:limit]
        folder = Path(dcfg["image_folder"]) if dcfg.get("image_folder") else None
        images = [open_image(Q(s.get("id"), "", "", image=s["image"]), folder) for s in samples]
        captions = [next(t["value"] for t in s["conversations"] if t.get("from") == "gpt") for s in samples]
    else:
        log.info("diagnostics: no world ground truth at %s and no captions file: skipped", gt_path)
        return None
    wl = Path(dcfg["wordlist"]) if dcfg.get("wordlist") else None
    if wl is not None and wl.is_file():
        words = read_wordlist(wl)
    elif rows is not None:
        log.warning("diagnostics: word list %s not found: decoding over the world's vocabulary only", wl)
        words = world_words(rows)
    else:
        log.info("diagnostics: word list %s not found: skipped", wl)
        return None
    pixels = [preprocess_image(model, im, aspect) for im in images]
    return pixels, captions, rows, words


def build(cfg: DictConfig, out: Path) -> dict:
    import torch

    from sea import tracking
    from sea.eval.diagnostics import run_diagnostics
    from sea.eval.report import flat_metrics, markdown_table, metric_name
    from sea.eval.runner import AnswerGenerator, benchmark_specs, process_info, run_benchmark, score_benchmark
    from sea.models.mllm import SeaMLLM
    from sea.utils.io import write_json

    ecfg = select(cfg, "eval")
    models = ecfg.get("models") or {}
    if not models:
        raise SeaError(
            "eval.models is empty: map each arm to a saved SeaMLLM folder, e.g. eval.models.sea=DIR"
        )
    specs = benchmark_specs(ecfg, _select_or(cfg, "data.eval_sets", {}))
    template = ecfg.get("template") or _select_or(cfg, "model.llm.template", "vicuna_v1")
    aspect = str(ecfg.get("image_aspect_ratio") or "pad")
    dcfg = ecfg.get("diagnostics") or {}
    proc = process_info()
    device = _device(ecfg)
    scores: dict[str, Any] = {}
    columns: dict[str, dict[str, float]] = {}
    metrics: dict[str, float] = {}
    for arm, folder in models.items():
        if not Path(folder, "sea_mllm.json").is_file():
            raise SeaError(f"eval.models.{arm}: {folder} is not a saved SeaMLLM folder (no sea_mllm.json)")
        model = SeaMLLM.load(folder, device=device, torch_dtype=ecfg.get("dtype"))
        model.eval()
        generator = AnswerGenerator(model, template, aspect)
        arm_scores: dict[str, Any] = {}
        for spec in specs:
            path = out / "answers" / arm / f"{spec.name}.jsonl"
            timing = run_benchmark(
                generator,
                spec,
                path,
                model_id=arm,
                batch_size=int(ecfg.get("batch_size", 16)),
                max_new_tokens=int(ecfg.get("max_new_tokens", 16)),
                sort_by_length=bool(ecfg.get("sort_by_length", True)),
                proc=proc,
                shard_dir=_shard_dir(cfg, ecfg) if proc.world_size > 1 else None,
            )
            if proc.is_main:
                arm_scores[spec.name] = score_benchmark(spec, path, ecfg.get("allow_missing"))
                arm_scores[spec.name]["seconds"] = timing["seconds"]
        arm_metrics = flat_metrics(arm_scores)
        if proc.is_main and dcfg.get("enabled", True):
            inputs = diagnostic_inputs(model, dcfg, aspect)
            if inputs is not None:
                pixels, captions, rows, words = inputs
                diag, dump = run_diagnostics(
                    model,
                    pixels,
                    words,
                    captions,
                    rows,
                    batch_size=int(ecfg.get("batch_size", 16)),
                    tacs_k=int(dcfg.get("tacs_k", 10)),
                    examples=int(dcfg.get("examples", 4)),
                )
                arm_scores["diagnostics"] = {"metrics": diag, "words": len(words), "images": len(pixels)}
                arm_metrics |= {metric_name("diagnostics", *k.split("/")): v for k, v in diag.items()}
                (out / "diagnostics").mkdir(exist_ok=True)
                (out / "diagnostics" / f"{arm}_nearest_words.txt").write_text(dump + "\n", encoding="utf-8")
        scores[arm] = arm_scores
        columns[arm] = arm_metrics
        metrics |= {metric_name(arm, *k.split("/")): v for k, v in arm_metrics.items()}
        del model, generator
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if not proc.is_main:
        return {}
    write_json(out / "scores.json", scores)
    table = markdown_table(columns)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    tracker = tracking.current()
    tracker.log_text(table, "evaluate/table.md")
    tracker.log_text(json.dumps(scores, indent=2, sort_keys=True), "evaluate/scores.json")
    if (out / "answers").is_dir():
        tracker.log_artifact(out / "answers", "evaluate/answers")
    log.info("evaluate:\n%s", table)
    return metrics


STAGE = Stage(
    name="evaluate",
    help="LLaVA-1.5 benchmarks in LLaVA's formats, scored like LLaVA's scripts, and alignment diagnostics",
    params=("eval", "data.eval_sets"),
    out="paths.evaluate",
    build=build,
    deps=("eval.models", "eval.diagnostics.wordlist", "eval.diagnostics.ground_truth"),
    tags=("gpu",),
)
run = STAGE.run
