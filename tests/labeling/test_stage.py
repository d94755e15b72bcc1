"""The `label` stage on a small shapes world with a tiny random CLIP: outputs, metrics, quality report,
cross-encoder transfer, two ranks (threads here; `accelerate launch` in the slow tier)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from sea.config import select
from sea.labeling.storage import check_label_compatibility, load_labels
from sea.models.vision import VisionTower
from sea.stages import base
from sea.stages import label as label_stage
from sea.utils import dist


def tower_width(cfg) -> int:
    """Width of the tiny CLIP's joint space (the patch features' and the centre's length)."""
    return int(json.loads(Path(select(cfg, "model.vision.model_config")).read_text())["embed_dim"])


def labels_of(path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    labels = load_labels(path)
    return {i: labels.get(i) for i in labels.image_ids()}


def test_stage_writes_labels_metrics_and_quality(label_cfg, world_root: Path, n_pretrain: int) -> None:
    cfg = label_cfg()
    metrics = label_stage.STAGE.run(cfg)
    out = Path(select(cfg, "paths.labels"))
    labels = load_labels(out)
    assert len(labels) == n_pretrain == metrics["images"]
    m = labels.manifest
    # the world recipe: one label per patch, words centred on the agreement sample's mean patch feature
    assert m["grid"] == [8, 8] and m["top_n"] == 1 and m["feature"] == "maskclip" and m["sign"] == "cosine"
    assert m["center_words"] is True and len(m["center"]) == tower_width(cfg)
    assert m["model"] == "tiny-clip-vit" and m["teacher"] is None and m["words"]["count"] == len(labels.words)
    tower = VisionTower.from_config(select(cfg, "model.vision"))
    check_label_compatibility(labels, tower)
    assert m["preprocess"] == json.loads(json.dumps(tower.preprocess_signature()))

    # the stored labels are the labeler's output for the same image
    from PIL import Image

    from sea.labeling.labeler import Labeler, LabelSettings
    from sea.labeling.text import word_embeddings

    text, _ = word_embeddings(tower, labels.words)
    settings = LabelSettings.from_config(select(cfg, "label"))
    labeler = Labeler(tower, text, labels.words, settings, centers={"maskclip": torch.tensor(m["center"])})
    row = json.loads((world_root / "prepared/manifests/pretrain.jsonl").read_text().splitlines()[3])
    with Image.open(world_root / "world" / row["image"]) as img:
        ids, scores = labeler.label_batch(tower.preprocess(img.convert("RGB"))[None])
    assert torch.equal(labels.get(row["id"])[0], ids[0])
    torch.testing.assert_close(labels.get(row["id"])[1], scores[0])

    for key in ("images_per_s", "labelled_patch_fraction", "labels_per_patch", "quality/configured_is_best"):
        assert key in metrics
    for feature in ("proj", "maskclip"):
        for sign in ("cosine", "neg_cosine"):
            assert 0.0 <= metrics[f"quality/{feature}/{sign}/top1"] <= 1.0
    assert "quality/background/margin_0/bg_unlabelled" in metrics and "quality/labels/top1" in metrics
    # the world recipe's filter: mean_sim 0.9 or a background word as top-1
    configured = "quality/background/mean_sim_0.9_word_background-black-gray-brown-navy"
    assert metrics["quality/labels/label_precision"] == metrics[f"{configured}/label_precision"]
    # one label per patch: the label align draws is the top-1, by ground truth and by the captions
    assert metrics["agreement/labels/drawn_agreement"] == pytest.approx(
        metrics["agreement/labels/patch_agreement"]
    )
    assert metrics["quality/labels/sampled_precision"] == pytest.approx(
        metrics["quality/labels/label_precision"]
    )
    assert metrics[f"{configured}/bg_unlabelled"] >= metrics["quality/background/mean_sim_0.9/bg_unlabelled"]
    assert m["background"]["mode"] == "mean_sim_word" and m["background"]["threshold"] == 0.9
    assert (out / "quality" / "report.md").read_text().count("| maskclip/cosine |") == 1
    assert len(list((out / "quality" / "label_maps").glob("*.png"))) == 2
    # same config: skipped, same metrics
    assert label_stage.STAGE.run(cfg) == json.loads((out / "_SUCCESS.json").read_text())["metrics"]


def test_teacher_labels_are_mapped_onto_the_model_grid(label_cfg, tmp_path: Path, clip_sizes: dict) -> None:
    from sea.models.tiny import tiny_vision_cfg

    teacher = tiny_vision_cfg(
        tmp_path / "teacher", name="tiny-teacher", image_size=64, patch_size=16, seed=3, **clip_sizes
    )
    cfg = label_cfg("label.background.mode=none", "label.quality.label_maps=1")
    OmegaConf.update(cfg, "label.teacher", teacher, merge=False)
    metrics = label_stage.STAGE.run(cfg)
    labels = load_labels(select(cfg, "paths.labels"))
    m = labels.manifest
    assert m["grid"] == [8, 8] and m["teacher"]["grid"] == [4, 4] and m["model"] == "tiny-teacher"
    check_label_compatibility(labels, VisionTower.from_config(select(cfg, "model.vision")))
    ids, _ = labels.get(labels.image_ids()[0])
    grid = ids.reshape(8, 8, -1)
    assert torch.equal(grid[0, 0], grid[1, 1]) and torch.equal(grid[6, 6], grid[7, 7])  # 2x2 blocks
    assert 0.0 <= metrics["quality/proj/cosine/top1"] <= 1.0


def test_two_ranks_give_the_same_labels_as_one(
    label_cfg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, n_pretrain: int
) -> None:
    """The multi-process path (one shared folder, shards per rank, merge on rank 0), ranks as threads."""
    single = label_cfg("label.quality.enabled=false", "label.batch_size=5")
    label_stage.STAGE.run(single)
    barrier = threading.Barrier(2, timeout=120)
    local = threading.local()

    def fake_process_info(cpu: bool = False) -> dist.ProcessInfo:
        return dist.ProcessInfo(local.rank, 2, "cpu", barrier.wait)

    monkeypatch.setattr(base, "process_info", fake_process_info)
    monkeypatch.setattr(dist, "process_info", fake_process_info)
    two = label_cfg("label.quality.enabled=false", "label.batch_size=5", f"paths.labels={tmp_path / 'two'}")
    results: dict[int, object] = {}

    def rank(r: int) -> None:
        local.rank = r
        try:
            results[r] = label_stage.STAGE.run(two)
        except BaseException as err:  # noqa: BLE001 - reported below
            results[r] = err
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(isinstance(v, BaseException) for v in results.values()), results
    assert results[0]["images"] == n_pretrain and results[0]["world_size"] == 2  # main: merged counts
    assert results[1]["images"] == n_pretrain // 2
    out = tmp_path / "two"
    assert load_labels(out).manifest["world_size"] == 2
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "labels-r00-00000.safetensors",
        "labels-r01-00000.safetensors",
    ]
    assert not list(out.parent.glob(".two.*")) and not list(out.glob(".rank*")), "temp files left behind"
    a, b = labels_of(select(single, "paths.labels")), labels_of(out)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key][0], b[key][0]) and torch.equal(a[key][1], b[key][1]), key
