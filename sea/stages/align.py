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

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.config import select
from sea.errors import SeaError
from sea.integrity import check_input
from sea.layout import ADAPTER_FILE
from sea.stages.base import Stage
from sea.tracking import Tracker
from sea.training.recipe import TrainingParts, TrainingRecipe, is_sharded, load_training_samples, train_stage
from sea.utils.settings import settings_from

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelSource:
    """`align.label_source` (conf/align/default.yaml): the `label` stage's labels or oracle labels."""

    kind: str
    precision: float
    seed: int
    ground_truth: str


def select_label_source(acfg: dict[str, Any], samples: list[dict], clip_labels: Any, grid: Any) -> Any:
    """The arm's labels: the `label` stage's CLIP labels (`label_source.kind: clip`), or oracle labels
    from the world's ground truth over the same word list, corrupted to `label_source.precision`
    (`kind: oracle`, see `sea.labeling.oracle`)."""
    from sea.labeling.oracle import LABEL_SOURCES, oracle_labels
    from sea.training.data import InMemoryLabels

    source = settings_from(LabelSource, acfg["label_source"], "align.label_source")
    if source.kind not in LABEL_SOURCES:
        raise SeaError(f"align.label_source.kind: unknown {source.kind!r}; known: {', '.join(LABEL_SOURCES)}")
    if source.kind == "clip":
        return clip_labels
    precision = source.precision
    labels, _ = oracle_labels(samples, source.ground_truth, clip_labels.words, grid, precision, source.seed)
    log.info("oracle labels for %d images at label precision %.2f", len(labels), precision)
    return InMemoryLabels(clip_labels.words, labels)


def save_adapter_from(accelerator: Any, model: Any, path: Path, adapter_type: str) -> None:
    """Write the trained adapter (gathered first when the model is sharded: FSDP, ZeRO-3)."""
    from sea.models.adapter import build_adapter, save_adapter

    unwrapped = accelerator.unwrap_model(model)
    adapter = unwrapped.mllm.adapter
    if is_sharded(accelerator):
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


@dataclass(frozen=True)
class ProbeSettings:
    """`align.diagnostics`: the alignment diagnostics every `every` optimizer steps (0: off) on
    `max_images` of `eval.diagnostics`' held-out images."""

    every: int
    max_images: int


class AlignRecipe(TrainingRecipe):
    """Stage 1 of one arm: frozen tower and LLM, trainable adapter (+ logit scale for SEA)."""

    stage = "align"

    def setup(self) -> TrainingParts:
        from sea.models.mllm import SeaMLLM
        from sea.training.data import BatchLayout, Collator
        from sea.training.loop import TrainHooks
        from sea.training.modules import AlignModule
        from sea.training.optim import ParamGroupSpec, param_groups
        from sea.training.sea_loss import SeaLoss, SeaSettings, label_embedding_table, window_table

        cfg, acfg, settings = self.cfg, self.section, self.settings
        sea = SeaSettings.from_config(acfg["sea"])
        mllm = SeaMLLM.from_config(cfg)
        mllm.set_trainable(adapter=True, llm=False)
        if mllm.tokenizer is None or mllm.tokenizer.pad_token_id is None:
            raise SeaError("the LLM's tokenizer has no pad token")
        samples = load_training_samples(cfg, "pretrain")
        labels, sea_loss, word_ok = None, None, None
        if sea.enabled:
            from sea.labeling.storage import check_label_compatibility, load_labels

            if not acfg.get("labels"):
                raise SeaError(f"align.labels is not set, and arm '{self.arm}' has a SEA weight > 0")
            check_input(acfg["labels"], "label")
            labels = load_labels(acfg["labels"])
            check_label_compatibility(labels, mllm.vision)
            labels = select_label_source(acfg, samples, labels, mllm.vision.grid)
            table, word_ok = label_embedding_table(
                mllm.llm.get_input_embeddings(), mllm.tokenizer, labels.words, sea.word_prefix, sea.tokenize
            )
            sea_loss = SeaLoss(sea, table)
            processes = self.proc.world_size
            layout = BatchLayout(settings.global_batch_size, settings.per_device_batch_size, processes)
            sea_loss.accumulation = layout.accumulation
            log.info(
                "align[%s]: SEA contrastive batch = the pairs of %d images (%s), about %d windows each",
                self.arm,
                layout.per_device * (processes if sea.gathers(processes) else 1),
                f"gathered over {processes} processes"
                if sea.gathers(processes)
                else "one process's micro-batch",
                len(window_table(mllm.vision.grid, sea.window)),
            )
        module = AlignModule(mllm, sea_loss, sea.weight)
        self.freeze(module, mllm)

        no_image = [s["id"] for s in samples if not s.get("image")]
        if no_image:
            raise SeaError(
                f"{len(no_image)} pretrain samples have no image (first: {no_image[:3]}); "
                "stage 1 needs one each"
            )
        dataset = self.conversations(
            "pretrain",
            mllm,
            samples,
            labels=labels,
            num_patches=mllm.vision.num_patches,
            seed=self.seed,
            missing_labels=sea.missing_labels,
        )
        collator = Collator(
            mllm.tokenizer.pad_token_id, mllm.vision.grid, sea if sea.enabled else None, word_ok
        )
        specs = [ParamGroupSpec("adapter", mllm.adapter)]
        if sea_loss is not None:
            specs.append(ParamGroupSpec("logit_scale", [sea_loss.logit_scale]))
        groups = param_groups(specs, settings.lr, settings.weight_decay)
        self.adapter_type, self.sea_loss, self.weight = mllm.adapter_type, sea_loss, sea.weight
        probe = self.training_probe(mllm, sea)
        hooks = TrainHooks(after_step=probe) if probe is not None else None
        return TrainingParts(module, dataset, collator, groups, mllm.vision.num_tokens, hooks)

    def training_probe(self, mllm: Any, sea: Any) -> Any:
        """The alignment diagnostics every `align.diagnostics.every` steps on `eval.diagnostics`' held-out
        images (`sea.eval.diagnostics.TrainingProbe`), on the main process; None when off or not possible."""
        probe = settings_from(ProbeSettings, self.section["diagnostics"], "align.diagnostics")
        if probe.every <= 0 or not self.proc.is_main:
            return None
        accelerate_cfg = self.hardware.accelerate_config or ""
        if any(k in accelerate_cfg for k in ("fsdp", "zero3")):
            log.warning("align.diagnostics: the adapter is sharded under %s, no curves", accelerate_cfg)
            return None
        from sea.eval.diagnostics import TrainingProbe, diagnostic_inputs
        from sea.eval.settings import DiagnosticsSettings

        held_out = replace(
            DiagnosticsSettings.from_config(select(self.cfg, "eval.diagnostics")), max_images=probe.max_images
        )
        inputs = diagnostic_inputs(mllm, held_out, str(self.section["image_aspect_ratio"]))
        if inputs is None:
            log.warning("align.diagnostics: no held-out images (eval.diagnostics), no curves")
            return None
        return TrainingProbe(
            mllm,
            inputs,
            probe.every,
            word_prefix=sea.word_prefix,
            tokenize=sea.tokenize,
            tacs_k=held_out.tacs_k,
        )

    def save(self, accelerator: Any, model: Any, out: Path, metrics: dict[str, float]) -> dict[str, Any]:
        save_adapter_from(accelerator, model, out / ADAPTER_FILE, self.adapter_type)
        if self.proc.is_main and self.sea_loss is not None:
            metrics["final_logit_scale"] = float(self.sea_loss.scale().detach())
        return {"lambda": self.weight}


def log_model(tracker: Tracker, out: Path, name: str, tags: Mapping[str, Any]) -> str | None:
    """The adapter as an MLflow pytorch model (features `[..., tokens, vision width]` in, LLM embeddings
    out), its LLaVA-format `adapter.safetensors` beside it; an adapter without Linear layers as files."""
    import numpy as np

    from sea.models.adapter import adapter_dims, load_adapter

    adapter = load_adapter(out / ADAPTER_FILE).eval()
    try:
        in_dim, _ = adapter_dims(adapter)
    except SeaError:
        return tracker.log_files_model(out, name, tags)
    # batch and token axes above 1, so that MLflow's torch.export keeps them free
    example = np.random.default_rng(0).standard_normal((2, 4, in_dim)).astype(np.float32)
    return tracker.log_torch_model(adapter, name, example, tags, extra_files=[out / ADAPTER_FILE])


def build(cfg: DictConfig, out: Path, arm: str) -> dict:
    return train_stage(AlignRecipe, cfg, out, arm, STAGE.hash_record(cfg, arm))


STAGE = Stage(
    name="align",
    help="stage 1: train the adapter per arm (LM loss + lambda x SEA loss; baseline lambda = 0)",
    params=(
        "model",
        "data.pretrain.json",
        "data.pretrain.image_folder",
        "align.arm_overrides",
        "align.template",
        "align.image_aspect_ratio",
        "align.train",
        "align.sea",
        "align.label_source",
        "align.diagnostics",
        "align.log.every",
        "eval.diagnostics",  # the held-out images of the training probe (align.diagnostics.every > 0)
    ),
    runtime=("align.checkpoint", "align.log.progress"),
    out="paths.align",
    build=build,
    deps=("paths.prepared", "align.labels", "paths.backbones"),
    tags=("gpu",),
    per_arm=True,
    log_model=log_model,
)
run = STAGE.run
