"""`label`: CLIP token labeling of the pretraining images (sea-method.md section 2; design.md section 4).

Reads `<paths.prepared>/manifests/pretrain.jsonl` (images under `data.pretrain.image_folder`) and
`<paths.prepared>/wordlist.txt`; the CLIP is `model.vision` (or `label.teacher`, whose labels are then
mapped onto `model.vision`'s patch grid). Writes under `paths.labels` (see `sea.labeling.storage`):
`manifest.json`, `words.txt`, `shards/*.safetensors`, and with ground truth (the shapes world)
`quality/report.json`, `quality/report.md` and `quality/label_maps/*.png`.

Under `accelerate launch` with W processes, every rank builds into the shared temp folder (the stage
contract): process r labels images r::W into its own shards, and after a barrier the main process
merges them into one manifest and writes the quality report (its metrics are the stage's; the other
ranks return their own counts). Alone it is one process (no launcher needed). On CPU, two processes:
`accelerate launch --config_file conf/hardware/accelerate/cpu_ddp.yaml -m sea label hardware=cpu_ddp`.

Before labeling, the main process measures caption agreement (`sea.labeling.agreement`) of every
variant and of the labels to be stored on `label.agreement.max_images` images: `auto` feature/sign are
resolved from it and the guard (`label.guard`) stops a run whose labels are at chance or collapsed.
Written to `quality/agreement.{md,json}` and the manifest's `variant_choice`.

Metrics: counts and throughput, `agreement/<feature>/<sign>/<metric>` and `agreement/labels/<metric>`,
and with ground truth `quality/<feature>/<sign>/<metric>` for every
variant, `quality/background/<filter>/<metric>` for the configured variant, `quality/labels/<metric>`
for the stored labels and `quality/configured_is_best` (see `sea.labeling.quality`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.config import select
from sea.data.llava import read_manifest
from sea.errors import SeaError
from sea.labeling.settings import LabelSection
from sea.layout import manifest_path
from sea.stages.base import Stage
from sea.utils.dist import Hardware

log = logging.getLogger(__name__)


def read_rows(path: Path) -> list[dict]:
    """Manifest rows with an image, in order."""
    rows = [row for row in read_manifest(path) if row.get("image")]
    if not rows:
        raise SeaError(f"{path}: no samples with an image to label")
    return rows


def _device(cfg: DictConfig, proc_device: str | None) -> str:
    import torch

    device = proc_device or Hardware.from_config(cfg).device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SeaError(f"hardware.device is '{device}' but CUDA is not available (use hardware=cpu)")
    return device


def build(cfg: DictConfig, out: Path) -> dict:
    import torch

    from sea.labeling.labeler import Labeler, LabelSettings, LabelStats, label_rows
    from sea.labeling.quality import best_variant, run_quality
    from sea.labeling.storage import SHARDS, ShardWriter, write_labels_dir
    from sea.labeling.text import read_words, word_embeddings
    from sea.labeling.transfer import check_same_view, patch_cover
    from sea.models.vision import VisionTower
    from sea.tracking import current
    from sea.utils import dist

    lcfg = select(cfg, "label")
    section = LabelSection.from_config(lcfg)
    settings = LabelSettings.from_config(lcfg)
    hardware = Hardware.from_config(cfg)
    proc = dist.process_info(cpu=hardware.device == "cpu")
    device = _device(cfg, proc.device)
    mixed = hardware.mixed_precision
    prepared = Path(select(cfg, "paths.prepared"))
    rows = read_rows(manifest_path(prepared, "pretrain"))
    if section.max_images:
        rows = rows[: section.max_images]
    image_folder = Path(select(cfg, "data.pretrain.image_folder"))
    words = read_words(prepared / "wordlist.txt")

    vcfg = select(cfg, "model.vision")
    teacher_cfg = section.teacher
    tower = VisionTower.from_config(teacher_cfg or vcfg, device=device)
    target = VisionTower.from_config(vcfg, device="cpu") if teacher_cfg else tower
    if teacher_cfg:
        check_same_view(tower.preprocess_signature(), target.preprocess_signature())
    text, text_info = word_embeddings(
        tower, words, settings.prompt, section.text_cache_dir, section.text_batch_size
    )
    # Caption agreement of every variant on a sample, before the long run: `auto` and the guard.
    check = _on_main(
        proc,
        out / ".agreement.json",
        lambda: caption_check(cfg, section, settings, tower, text, words, rows, mixed),
    )
    if check["failure"]:
        raise SeaError(check["failure"])
    settings = settings.with_variant(check["variant"])
    centers = {f: torch.tensor(c) for f, c in check["centers"].items()}
    labeler = Labeler(tower, text, words, settings, mixed, target.grid, patch_cover(target), centers)

    # Under a launcher every rank builds into the same `out`: rank r labels images r::W into its own shards.
    mine = rows[proc.rank :: proc.world_size]
    writer = ShardWriter(out / SHARDS, f"r{proc.rank:02d}", settings.shard_size)
    log.info(
        "label: %d of %d images on rank %d/%d (%s, %s), %d words, feature=%s sign=%s background=%s",
        len(mine),
        len(rows),
        proc.rank,
        proc.world_size,
        device,
        mixed,
        len(words),
        settings.feature,
        settings.sign,
        settings.background.name(),
    )
    stats = label_rows(
        labeler,
        mine,
        image_folder,
        writer,
        hardware.num_workers,
        progress=section.progress,
        desc=f"label[{proc.rank}]" if proc.world_size > 1 else "label",
    )
    common = {
        "num_words": len(words),
        "text_cached": float(bool(text_info["cached"])),
        "world_size": proc.world_size,
    }
    records = writer.records
    if proc.world_size > 1:
        part = out / f".rank{proc.rank:03d}.json"
        part.write_text(json.dumps({"records": records, "stats": asdict(stats)}), encoding="utf-8")
        proc.barrier()
        if not proc.is_main:  # the main rank merges; this rank's own counts only
            return {**stats.metrics(), **common}
        stats, records = LabelStats(), []
        for rank in range(proc.world_size):
            part = out / f".rank{rank:03d}.json"
            done = json.loads(part.read_text(encoding="utf-8"))
            part.unlink()
            stats.merge(done["stats"])
            records += done["records"]

    teacher = None
    if teacher_cfg:
        teacher = {
            "model": tower.name,
            "grid": list(tower.grid),
            "preprocess": tower.preprocess_signature(),
            "mapping": "max_overlap",
        }
    meta = {
        "model": tower.name,
        "model_fingerprint": text_info["model_fingerprint"],
        "grid": list(target.grid),
        "preprocess": target.preprocess_signature(),
        "teacher": teacher,
        **settings.describe(),
        "variant_choice": {k: check[k] for k in ("configured", "variant", "reason")},
        # word centring: the mean patch feature subtracted before scoring (from `agreement`'s sample)
        "center": check["centers"].get(settings.feature),
        "world_size": proc.world_size,
    }
    manifest = write_labels_dir(out, meta, words, records)
    metrics: dict[str, Any] = {**stats.metrics(), **common}
    log.info(
        "label: %d images, %.1f%% of patches labelled, %.2f labels/patch, %.1f images/s",
        manifest["num_images"],
        100 * metrics["labelled_patch_fraction"],
        metrics["labels_per_patch"],
        metrics["images_per_s"],
    )
    qdir = out / "quality"
    write_agreement(qdir, check)
    quality = run_quality(labeler, target.grid, rows, image_folder, words, section.quality, qdir)
    tracker = current()
    tracker.log_artifact(qdir, "label_quality")
    tracker.set_tags({"label.variant": check["variant"], "label.variant_reason": check["reason"][:4000]})
    metrics.update({f"quality/{k}": v for k, v in quality.items()})
    metrics.update(check["metrics"])
    if quality:  # ground truth: does caption agreement pick the variant that ground truth ranks first?
        truth = {k: v for k, v in quality.items() if k.rsplit("/", 1)[0] in check["variants"]}
        metrics["agreement/matches_truth_best"] = float(best_variant(truth) == check["best_measured"])
    return metrics


def pretrain_captions(cfg: DictConfig, rows: list[dict]) -> list[str]:
    """The caption (gpt turns joined) of each manifest row."""
    from sea.data.llava import load_samples

    samples = load_samples(select(cfg, "data.pretrain.json"), rows)
    return [" ".join(t["value"] for t in s["conversations"] if t.get("from") == "gpt") for s in samples]


def wordlist_lemmatized(prepared: Path) -> bool:
    """Whether `prepare` lemmatised the word list (`report.json`'s `wordlist.lemmatized`; no report or
    no entry: not)."""
    from sea.utils.io import read_json

    path = prepared / "report.json"
    return path.is_file() and bool(read_json(path).get("wordlist", {}).get("lemmatized", False))


def caption_check(
    cfg: DictConfig,
    section: LabelSection,
    settings: Any,
    tower: Any,
    text: Any,
    words: list[str],
    rows: list[dict],
    mixed: str,
) -> dict[str, Any]:
    """Caption agreement (`sea.labeling.agreement`) of every variant and of the labels about to be stored
    on the first `label.agreement.max_images` images; the variant (`auto` resolved), why, and the guard's
    verdict (`failure`: a message or None)."""
    from sea.labeling.agreement import (
        CaptionCheck,
        check_labels,
        drawn_label_warning,
        format_table,
        pick_variant,
        variants_of,
    )

    sample = rows[: section.agreement.max_images]
    check = CaptionCheck.build(
        tower,
        text,
        words,
        sample,
        pretrain_captions(cfg, sample),
        select(cfg, "data.pretrain.image_folder"),
        settings.batch_size,
        mixed,
        top_k=section.agreement.top_k,
        image_words=section.agreement.image_words,
        lemmatize=wordlist_lemmatized(Path(select(cfg, "paths.prepared"))),
        center_words=settings.center_words,
    )
    variants = check.variants(settings.min_score)
    configured = f"{settings.feature}/{settings.sign}"
    best_measured, _ = pick_variant(variants, variants)
    variant, reason = pick_variant(variants, variants_of(settings.feature, settings.sign))
    reason = ("auto picked " if settings.auto else "configured ") + reason
    stored = check.labels(settings.with_variant(variant))
    failure = check_labels(variant, stored, section.guard, check.images)
    if warning := drawn_label_warning(stored, settings.top_n):
        log.warning("label: %s", warning)
    log.info("label: %s\n%s", reason, format_table({**variants, f"stored: {variant}": stored}))
    metrics = {f"agreement/{v}/{k}": x for v, m in variants.items() for k, x in m.items()}
    metrics |= {f"agreement/labels/{k}": x for k, x in stored.items()}
    metrics |= {"agreement/images": float(check.images), "agreement/auto": float(settings.auto)}
    return {
        "configured": configured,
        "variant": variant,
        "best_measured": best_measured,
        "reason": reason,
        "failure": failure,
        "variants": variants,
        "labels": stored,
        "metrics": metrics,
        # word centring: each feature's mean patch feature over the sample (lists: the other ranks read JSON)
        "centers": {f: c.tolist() for f, c in check.centers.items()},
    }


def _on_main(proc: Any, path: Path, compute: Any) -> dict[str, Any]:
    """`compute()` on the main process; under a launcher the other ranks read its result (one decision)."""
    if proc.world_size == 1:
        return compute()
    if proc.is_main:
        path.write_text(json.dumps(compute()), encoding="utf-8")
    proc.barrier()
    result = json.loads(path.read_text(encoding="utf-8"))
    proc.barrier()
    if proc.is_main:
        path.unlink()
    return result


def write_agreement(qdir: Path, check: dict[str, Any]) -> None:
    """`quality/agreement.{json,md}`: every variant's caption agreement and the choice."""
    from sea.labeling.agreement import format_table
    from sea.utils.io import write_json

    keep = ("configured", "variant", "reason", "variants", "labels")
    write_json(qdir / "agreement.json", {k: check[k] for k in keep})
    table = format_table({**check["variants"], f"stored: {check['variant']}": check["labels"]})
    text = f"# Caption agreement (no ground truth needed)\n\n{check['reason']}\n\n{table}\n"
    (qdir / "agreement.md").write_text(text, encoding="utf-8")


# `label` keys that shape the labels and the quality report (params), and those that only set how
# the work is batched, cached and shown.
LABEL_RUNTIME_KEYS = ("progress", "text_cache_dir", "batch_size", "text_batch_size", "chunk_elems")
LABEL_KEYS = (
    "top_n",
    "min_score",
    "feature",
    "sign",
    "prompt",
    "background",
    "center_words",
    "shard_size",
    "max_images",
    "teacher",
    "agreement",
    "guard",
    "quality",
)

STAGE = Stage(
    name="label",
    help="CLIP token labeling: top-n words per patch of the pretraining images, label-quality report",
    params=(
        *(f"label.{key}" for key in LABEL_KEYS),
        "model.vision",
        "data.pretrain.json",
        "data.pretrain.image_folder",
    ),
    runtime=tuple(f"label.{key}" for key in LABEL_RUNTIME_KEYS),
    out="paths.labels",
    build=build,
    deps=("paths.prepared", "paths.backbones"),
    tags=("gpu",),
)
run = STAGE.run
