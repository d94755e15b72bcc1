"""`align`: stage 1 (feature alignment): the adapter of one training run (arm, seed).

The vision tower and the LLM are frozen; the adapter (and, for SEA, the logit scale 1/tau) trains on
the pretraining captions with the `plain` template. Loss: L_g + lambda * L_a (sea-method.md Eq. 13),
with L_a the SEA token-level contrastive loss on the stored patch labels (`sea.training.sea_loss`).
The stage runs once per arm of `arms` and seed (settings merged from `align.arm_overrides.<arm>`):
`sea` (lambda = align.sea.weight > 0) and `baseline` (lambda = 0: plain LLaVA stage 1, no labels
read). Arms with the same seed get the same adapter initialisation and the same batches in order.

Reads `<paths.prepared>/manifests/pretrain.jsonl` (samples of `data.pretrain.json`, images under
`data.pretrain.image_folder`) and, for arms with lambda > 0, the labels in `align.labels` (checked
against the vision tower's grid and preprocessing). Writes `<paths.align>/seed<seed>/<arm>/`:
`adapter.safetensors` (LLaVA key names `mm_projector.*`), `train_log.jsonl` (one row per step) and
`metrics.json`. Checkpoints (`align.checkpoint`) live in `<align.checkpoint.dir>/seed<seed>/<arm>/`
until the run has finished; a re-run resumes from them.

Metrics: `loss`, `loss_lm`, (`loss_sea`, `final_logit_scale`, ...), `steps`, `seconds`,
`resumed_from`; per step in MLflow: `train/<name>`.
"""

from __future__ import annotations

import functools
import logging
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.errors import SeaError
from sea.stages.base import Stage, instance_subdir, root_relative, select, select_or
from sea.stages.integrity import check_input

log = logging.getLogger(__name__)

ADAPTER_FILE = "adapter.safetensors"
LOG_FILE = "train_log.jsonl"


def hardware(cfg: DictConfig) -> dict[str, Any]:
    """`hardware` with defaults: device, mixed_precision, num_workers."""
    return {
        "device": str(select_or(cfg, "hardware.device", "cpu")),
        "mixed_precision": str(select_or(cfg, "hardware.mixed_precision", "no")),
        "num_workers": int(select_or(cfg, "hardware.num_workers", 0)),
    }


def load_training_samples(cfg: DictConfig, dataset: str) -> list[dict]:
    """The kept samples of `data.<dataset>` (`prepare`'s manifest order)."""
    from sea.training.data import load_samples, read_manifest

    prepared = Path(select(cfg, "paths.prepared"))
    check_input(prepared, "prepare", [f"manifests/{dataset}.jsonl"])
    rows = read_manifest(prepared / "manifests" / f"{dataset}.jsonl")
    return load_samples(select(cfg, f"data.{dataset}.json"), rows)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def select_label_source(acfg: dict[str, Any], samples: list[dict], clip_labels: Any, grid: Any) -> Any:
    """The arm's labels: the `label` stage's CLIP labels (`label_source.kind: clip`), or oracle labels
    from the world's ground truth over the same word list, corrupted to `label_source.precision`
    (`kind: oracle`, see `sea.labeling.oracle`)."""
    from sea.labeling.oracle import LABEL_SOURCES, oracle_labels
    from sea.training.data import InMemoryLabels

    source = acfg.get("label_source") or {"kind": "clip"}
    kind = source.get("kind", "clip")
    if kind not in LABEL_SOURCES:
        raise SeaError(f"align.label_source.kind: unknown {kind!r}; known: {', '.join(LABEL_SOURCES)}")
    if kind == "clip":
        return clip_labels
    precision = float(source.get("precision", 1.0))
    labels, _ = oracle_labels(
        samples, source["ground_truth"], clip_labels.words, grid, precision, int(source.get("seed", 0))
    )
    log.info("oracle labels for %d images at label precision %.2f", len(labels), precision)
    return InMemoryLabels(clip_labels.words, labels)


def save_adapter_from(accelerator: Any, model: Any, path: Path, adapter_type: str) -> None:
    """Write the trained adapter (gathered first when the model is sharded: FSDP, ZeRO-3)."""
    from sea.models.adapter import build_adapter, save_adapter

    unwrapped = accelerator.unwrap_model(model)
    adapter = unwrapped.mllm.adapter
    if _sharded(accelerator):
        state = accelerator.get_state_dict(model)
        prefix = "mllm.adapter."
        own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if accelerator.is_main_process:
            vision = unwrapped.mllm.vision.hidden_size
            d_llm = unwrapped.mllm.llm.get_input_embeddings().embedding_dim
            adapter = build_adapter(adapter_type, vision, d_llm)
            adapter.load_state_dict(own)
    if accelerator.is_main_process:
        save_adapter(adapter.float(), path, type=adapter_type)


def _sharded(accelerator: Any) -> bool:
    kind = accelerator.distributed_type.name
    if kind == "FSDP":
        return True
    if kind == "DEEPSPEED":
        return int(accelerator.state.deepspeed_plugin.zero_stage) == 3
    return False


def train_arm(cfg: DictConfig, arm: str, out: Path, proc: Any) -> dict[str, float]:
    """Train one arm's adapter into `out` (on the main process); returns its metrics."""
    import torch

    from sea.models.mllm import SeaMLLM
    from sea.training.arms import ArmFolder, arm_config, folder_fingerprint
    from sea.training.data import BatchLayout, Collator, ConversationDataset
    from sea.training.loop import TrainHooks, TrainSettings, cast_frozen, train_arm
    from sea.training.modules import AlignModule
    from sea.training.optim import ParamGroupSpec, param_groups
    from sea.training.sea_loss import SeaLoss, SeaSettings, label_embedding_table, window_table

    acfg = arm_config(select(cfg, "align"), arm)
    settings = TrainSettings.from_config(acfg["train"], "align.train")
    sea = SeaSettings.from_config(acfg["sea"])
    hw = hardware(cfg)
    seed = int(select(cfg, "seed"))
    ck = acfg.get("checkpoint") or {}
    logc = acfg.get("log") or {}
    fingerprint = {
        "stage": "align",
        "arm": arm,
        "seed": seed,
        "model": select(cfg, "model"),
        "data": select(cfg, "data.pretrain"),
        "settings": {k: acfg.get(k) for k in ("template", "image_aspect_ratio", "train", "sea")},
        "inputs": {
            "prepared": folder_fingerprint(select(cfg, "paths.prepared")),
            "labels": folder_fingerprint(acfg.get("labels")) if sea.enabled else None,
        },
        "label_source": acfg.get("label_source") if sea.enabled else None,
        "processes": proc.world_size,
        "mixed_precision": hw["mixed_precision"],
    }
    fingerprint = root_relative(fingerprint, select_or(cfg, "paths.root"))  # a moved root resumes
    folder = ArmFolder(checkpoint_dir(cfg, "align"), instance_subdir(seed, arm), fingerprint)

    # ---- model: frozen tower and LLM, trainable adapter (+ logit scale) ----------------------------
    seed_everything(seed)  # same adapter initialisation in every arm
    mllm = SeaMLLM.from_config(cfg)
    mllm.set_trainable(adapter=True, llm=False)
    if mllm.tokenizer is None or mllm.tokenizer.pad_token_id is None:
        raise SeaError("the LLM's tokenizer has no pad token")
    samples = load_training_samples(cfg, "pretrain")
    labels, sea_loss, word_ok = None, None, None
    if sea.enabled:
        from sea.labeling.storage import check_label_compatibility, load_labels

        if not acfg.get("labels"):
            raise SeaError(f"align.labels is not set, and arm '{arm}' has a SEA weight > 0")
        check_input(acfg["labels"], "label")
        labels = load_labels(acfg["labels"])
        check_label_compatibility(labels, mllm.vision)
        labels = select_label_source(acfg, samples, labels, mllm.vision.grid)
        table, word_ok = label_embedding_table(
            mllm.llm.get_input_embeddings(), mllm.tokenizer, labels.words, sea.word_prefix, sea.tokenize
        )
        sea_loss = SeaLoss(sea, table)
        layout = BatchLayout(settings.global_batch_size, settings.per_device_batch_size, proc.world_size)
        sea_loss.accumulation = layout.accumulation
        log.info(
            "align[%s]: SEA contrastive batch = the pairs of %d images (%s), about %d windows each",
            arm,
            layout.per_device * (proc.world_size if sea.gathers(proc.world_size) else 1),
            f"gathered over {proc.world_size} processes"
            if sea.gathers(proc.world_size)
            else "one process's micro-batch",
            len(window_table(mllm.vision.grid, sea.window)),
        )
    module = AlignModule(mllm, sea_loss, sea.weight)
    cast_frozen(module, settings.frozen_torch_dtype(hw["mixed_precision"]))
    if settings.gradient_checkpointing:
        mllm.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    # ---- data -------------------------------------------------------------------------------------
    no_image = [s["id"] for s in samples if not s.get("image")]
    if no_image:
        raise SeaError(
            f"{len(no_image)} pretrain samples have no image (first: {no_image[:3]}); stage 1 needs one each"
        )
    dataset = ConversationDataset(
        samples,
        mllm.tokenizer,
        str(acfg.get("template", "plain")),
        select(cfg, "data.pretrain.image_folder"),
        mllm.vision.preprocess,
        image_aspect_ratio=str(acfg.get("image_aspect_ratio", "none")),
        image_mean=mllm.vision.preprocess_cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)),
        labels=labels,
        num_patches=mllm.vision.num_patches,
        seed=seed,
        missing_labels=sea.missing_labels,
    )
    collator = Collator(mllm.tokenizer.pad_token_id, mllm.vision.grid, sea if sea.enabled else None, word_ok)

    # ---- train ------------------------------------------------------------------------------------
    specs = [ParamGroupSpec("adapter", mllm.adapter)]
    if sea_loss is not None:
        specs.append(ParamGroupSpec("logit_scale", [sea_loss.logit_scale]))
    groups = param_groups(specs, settings.lr, settings.weight_decay)

    probe = training_probe(cfg, acfg, mllm, sea, proc)
    accelerator, result = train_arm(
        "align",
        arm,
        module,
        dataset,
        collator,
        settings,
        groups,
        folder=folder,
        fingerprint=fingerprint,
        checkpoint_cfg=ck,
        log_cfg=logc,
        hardware=hw,
        seed=seed,
        is_main=proc.is_main,
        tokens_per_image=mllm.vision.num_tokens,
        keep_default=2,
        hooks=TrainHooks(after_step=probe) if probe is not None else None,
    )

    # ---- outputs ----------------------------------------------------------------------------------
    metrics = result.metrics()
    save_adapter_from(accelerator, result.model, out / ADAPTER_FILE, mllm.adapter_type)
    if proc.is_main:
        if sea_loss is not None:
            metrics["final_logit_scale"] = float(sea_loss.scale().detach())
        write_run_outputs(out, folder, {"arm": arm, "seed": seed, "lambda": sea.weight, **metrics})
    accelerator.wait_for_everyone()
    del accelerator, module, mllm
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return metrics


def training_probe(cfg: DictConfig, acfg: dict[str, Any], mllm: Any, sea: Any, proc: Any) -> Any:
    """The alignment diagnostics every `align.diagnostics.every` steps on `eval.diagnostics`' held-out
    images (`sea.eval.diagnostics.TrainingProbe`), on the main process; None when off or not possible."""
    dcfg = dict(acfg.get("diagnostics") or {})
    every = int(dcfg.get("every") or 0)
    if every <= 0 or not proc.is_main:
        return None
    accelerate_cfg = str(select_or(cfg, "hardware.accelerate_config", "") or "")
    if any(k in accelerate_cfg for k in ("fsdp", "zero3")):
        log.warning("align.diagnostics: the adapter is sharded under %s, no curves", accelerate_cfg)
        return None
    from sea.eval.diagnostics import TrainingProbe, diagnostic_inputs

    ecfg = dict(select_or(cfg, "eval.diagnostics", {}) or {})
    ecfg["max_images"] = int(dcfg.get("max_images") or 16)
    inputs = diagnostic_inputs(mllm, ecfg, str(acfg.get("image_aspect_ratio", "none")))
    if inputs is None:
        log.warning("align.diagnostics: no held-out images (eval.diagnostics), no curves")
        return None
    return TrainingProbe(
        mllm,
        inputs,
        every,
        word_prefix=sea.word_prefix,
        tokenize=sea.tokenize,
        tacs_k=int(ecfg.get("tacs_k", 10)),
    )


def write_run_outputs(out: Path, folder: Any, record: dict[str, Any]) -> None:
    """The run's step log (`train_log.jsonl`) and `metrics.json` next to its trained weights."""
    from sea.utils.io import write_json

    if folder.log_file.is_file():
        (out / LOG_FILE).write_bytes(folder.log_file.read_bytes())
    write_json(out / "metrics.json", record)


def build_training_run(cfg: DictConfig, out: Path, arm: str, stage: str, train: Any) -> dict:
    """Train `arm` at the config's seed into `out` with `train(cfg, arm, out, proc)`, then drop the run's
    resume state. Under several processes every rank trains (data parallel); only the main one writes."""
    from sea.utils.dist import process_info

    proc = process_info(cpu=hardware(cfg)["device"] == "cpu")
    metrics = train(cfg, arm, out, proc)
    if proc.is_main:  # the run is in `out` now: its resume state is no longer needed
        remove_checkpoints(checkpoint_dir(cfg, stage), instance_subdir(select(cfg, "seed"), arm))
    return metrics


def remove_checkpoints(root: Path, instance: str) -> None:
    """Remove `<root>/<instance>`, then its parents up to `root`'s parent while they are empty."""
    path = root / instance
    shutil.rmtree(path, ignore_errors=True)
    for folder in [*path.parents][: len(Path(instance).parts) + 1]:
        try:
            folder.rmdir()
        except OSError:
            return


def checkpoint_dir(cfg: DictConfig, stage: str) -> Path:
    """`<stage>.checkpoint.dir`, by default `checkpoints/<stage>` beside the stage's output folder."""
    value = select_or(cfg, f"{stage}.checkpoint.dir")
    return Path(value) if value else Path(select(cfg, f"paths.{stage}")).parent / "checkpoints" / stage


STAGE = Stage(
    name="align",
    help="stage 1: train the adapter per arm (LM loss + lambda x SEA loss; baseline lambda = 0)",
    params=(
        "model",
        "data.pretrain",
        "align.arm_overrides",
        "align.template",
        "align.image_aspect_ratio",
        "align.train",
        "align.sea",
        "align.label_source",
    ),
    out="paths.align",
    build=functools.partial(build_training_run, stage="align", train=train_arm),
    deps=("paths.prepared", "align.labels", "paths.backbones"),
    tags=("gpu",),
    per_arm=True,
    register=True,
)
run = STAGE.run
