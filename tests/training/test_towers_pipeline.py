"""The paper's other towers end to end on the tiny training world: a tiny SigLIP-style tower (open_clip
timm trunk, 5 x 5 patches covering 30 of 32 px) and a tiny DINOv2 (timm, CLS + 4 registers, 6 x 6),
both loaded from local files through the real code path. The `label` stage labels with a tiny CLIP
teacher on its own 4 x 4 grid and maps the labels onto the tower's; one `align` step with SEA; then
generation from the saved model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from sea.errors import SeaError


def student_cfg(kind: str, directory: Path) -> dict:
    from sea.models.tiny import tiny_dinov2_cfg, tiny_siglip_cfg

    return tiny_siglip_cfg(directory) if kind == "siglip" else tiny_dinov2_cfg(directory)


@pytest.mark.parametrize("kind", ["siglip", "dinov2"])
def test_label_transfer_align_step_and_generation(
    kind: str, tiny_world: dict, stage_cfg, tmp_path: Path
) -> None:
    from PIL import Image

    from sea.labeling.labeler import Labeler, LabelSettings
    from sea.labeling.storage import check_label_compatibility, load_labels
    from sea.labeling.text import word_embeddings
    from sea.labeling.transfer import patch_cover
    from sea.data.llava import IMAGE_TOKEN_INDEX
    from sea.models.mllm import SeaMLLM
    from sea.models.vision import VisionTower
    from sea.stages import align, label
    from sea.config import select

    student = student_cfg(kind, tmp_path / "tower")
    teacher = dict(tiny_world["vision"])  # the tiny CLIP: 32 px, patch 8, 'shortest'
    cfg = stage_cfg(
        f"paths.labels={tmp_path / 'labels'}",
        "label.progress=false",
        "label.quality.enabled=false",
        "label.background.mode=none",
        "label.top_n=4",
        "align.train.max_steps=1",
        root=tmp_path / "out",
    )
    OmegaConf.update(cfg, "model.vision", student, merge=False)
    OmegaConf.update(cfg, "label.teacher", teacher, merge=False)
    tower = VisionTower.from_config(student)
    clip = VisionTower.from_config(teacher)
    assert tower.grid != clip.grid

    # ---- label: the teacher's labels on the tower's grid, only when both see the same view --------
    if kind == "siglip":  # SigLIP squashes the image; the CLIP teacher centre-crops it
        with pytest.raises(SeaError, match="see different parts of each image.*resize_mode=squash"):
            label.STAGE.run(cfg)
        teacher["resize_mode"] = "squash"  # the fix the error names
        OmegaConf.update(cfg, "label.teacher", teacher, merge=False)
        clip = VisionTower.from_config(teacher)
    metrics = label.STAGE.run(cfg)
    labels = load_labels(select(cfg, "paths.labels"))
    m = labels.manifest
    assert m["grid"] == list(tower.grid) and m["teacher"]["grid"] == [4, 4] and m["model"] == clip.name
    assert m["preprocess"] == json.loads(json.dumps(tower.preprocess_signature()))
    check_label_compatibility(labels, tower)
    assert metrics["labelled_patch_fraction"] > 0.5

    settings = LabelSettings.from_config(select(cfg, "label")).with_variant(m["variant_choice"]["variant"])
    text, _ = word_embeddings(clip, labels.words)
    centers = {settings.feature: torch.tensor(m["center"])} if m["center_words"] else None  # word centring
    labeler = Labeler(
        clip,
        text,
        labels.words,
        settings,
        target_grid=tower.grid,
        target_cover=patch_cover(tower),
        centers=centers,
    )
    row = json.loads((tiny_world["prepared"] / "manifests/pretrain.jsonl").read_text().splitlines()[0])
    with Image.open(tiny_world["data"] / row["image"]) as img:
        pixels = clip.preprocess(img.convert("RGB"))[None]
    own_ids, _ = Labeler(clip, text, labels.words, settings, centers=centers).label_batch(pixels)
    ids, _ = labeler.label_batch(pixels)
    assert torch.equal(labels.get(row["id"])[0], ids[0])
    assert own_ids.shape[1] == 16 and ids.shape[1] == tower.num_patches
    assert set(ids[0, :, 0].tolist()) <= set(
        own_ids[0, :, 0].tolist()
    )  # every patch: a teacher patch's labels

    # ---- one SEA align step through the tower -----------------------------------------------------
    result = align.STAGE.run(cfg, "sea")
    assert result["steps"] == 1
    out = Path(select(cfg, "paths.align")) / "seed0" / "sea"
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["sea/pairs"] > 0 and torch.isfinite(torch.tensor(log[0]["loss_sea"]))

    # ---- generation from the trained adapter, after a save/load round trip --------------------------
    OmegaConf.update(cfg, "model.adapter.pretrained", str(out / "adapter.safetensors"), force_add=True)
    model = SeaMLLM.from_config(cfg)
    assert type(model.vision) is type(tower) and model.vision.num_tokens == tower.num_patches
    model.save_pretrained(tmp_path / "mllm")
    again = SeaMLLM.load(tmp_path / "mllm")
    tok = model.tokenizer
    prompt = (
        tok("USER: ").input_ids
        + [IMAGE_TOKEN_INDEX]
        + tok(" What is it? ASSISTANT:", add_special_tokens=False).input_ids
    )
    image = tower.preprocess(Image.new("RGB", (40, 28), (200, 30, 30)))[None]
    first = model.generate([prompt], image, max_new_tokens=4, eos_token_ids=[-1])
    assert len(first[0]) == 4
    assert again.generate([prompt], image, max_new_tokens=4, eos_token_ids=[-1]) == first
