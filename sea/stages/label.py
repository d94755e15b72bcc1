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

Metrics: counts and throughput, and with ground truth `quality/<feature>/<sign>/<metric>` for every
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

from sea.config import select, select_or
from sea.data.llava import read_manifest
from sea.errors import SeaError
from sea.layout import manifest_path
from sea.stages.base import Stage

log = logging.getLogger(__name__)


def read_rows(path: Path) -> list[dict]:
    """Manifest rows with an image, in order."""
    rows = [row for row in read_manifest(path) if row.get("image")]
    if not rows:
        raise SeaError(f"{path}: no samples with an image to label")
    return rows


def _device(cfg: DictConfig, proc_device: str | None) -> str:
    import torch

    device = proc_device or str(select_or(cfg, "hardware.device", "cpu"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SeaError(f"hardware.device is '{device}' but CUDA is not available (use hardware=cpu)")
    return device


def build(cfg: DictConfig, out: Path) -> dict:
    from sea.labeling.labeler import Labeler, LabelSettings, LabelStats, label_rows
    from sea.labeling.quality import run_quality
    from sea.labeling.storage import SHARDS, ShardWriter, write_labels_dir
    from sea.labeling.text import read_words, word_embeddings
    from sea.models.vision import VisionTower
    from sea.tracking import current
    from sea.utils import dist

    lcfg = select(cfg, "label")
    settings = LabelSettings.from_config(lcfg)
    proc = dist.process_info(cpu=str(select_or(cfg, "hardware.device", "cpu")) == "cpu")
    device = _device(cfg, proc.device)
    mixed = str(select_or(cfg, "hardware.mixed_precision", "no"))
    prepared = Path(select(cfg, "paths.prepared"))
    rows = read_rows(manifest_path(prepared, "pretrain"))
    if lcfg.get("max_images"):
        rows = rows[: int(lcfg["max_images"])]
    image_folder = Path(select(cfg, "data.pretrain.image_folder"))
    words = read_words(prepared / "wordlist.txt")

    vcfg = select(cfg, "model.vision")
    teacher_cfg = lcfg.get("teacher")
    tower = VisionTower.from_config(teacher_cfg or vcfg, device=device)
    target = VisionTower.from_config(vcfg, device="cpu") if teacher_cfg else tower
    text, text_info = word_embeddings(
        tower, words, settings.prompt, lcfg.get("text_cache_dir"), int(lcfg.get("text_batch_size", 1024))
    )
    labeler = Labeler(tower, text, words, settings, mixed, target.grid)

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
        int(select_or(cfg, "hardware.num_workers", 0)),
        progress=bool(lcfg.get("progress", True)),
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
    quality = run_quality(
        labeler, target.grid, rows, image_folder, words, dict(lcfg.get("quality") or {}), qdir
    )
    if quality:
        current().log_artifact(qdir, "label_quality")
    metrics.update({f"quality/{k}": v for k, v in quality.items()})
    return metrics


STAGE = Stage(
    name="label",
    help="CLIP token labeling: top-n words per patch of the pretraining images, label-quality report",
    params=("seed", "label", "model.vision"),
    out="paths.labels",
    build=build,
    deps=("paths.prepared", "paths.backbones"),
    tags=("gpu",),
)
run = STAGE.run
