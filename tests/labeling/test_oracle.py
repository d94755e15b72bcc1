"""Oracle labels from the world's ground truth, and their corruption to a requested precision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sea.errors import SeaError
from sea.labeling.oracle import corrupt, oracle_labels
from sea.labeling.quality import evaluate, read_ground_truth

GRID = (8, 8)


def _rows(world_root: Path) -> list[dict]:
    lines = (world_root / "prepared" / "manifests" / "pretrain.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _words(world_root: Path) -> list[str]:
    return (world_root / "prepared" / "wordlist.txt").read_text().split()


def test_oracle_labels_are_the_ground_truth(world_root: Path) -> None:
    rows, words = _rows(world_root), _words(world_root)
    gt_file = world_root / "world" / "ground_truth" / "pretrain.jsonl"
    labels, gt = oracle_labels(rows, gt_file, words, GRID)
    truth = read_ground_truth(gt_file)
    assert set(labels) == {r["id"] for r in rows}
    for row in rows:
        rec = truth[row["image"]]
        ids, scores = labels[row["id"]]
        objects = {o["index"]: o for o in rec["objects"]}
        flat = [o for line in rec["patch_objects"] for o in line]  # world grid = label grid here
        for p, obj in enumerate(flat):
            if obj == 0:
                assert ids[p].tolist() == [-1, -1] and scores[p].tolist() == [0.0, 0.0]
            else:
                o = objects[obj]
                assert [words[i] for i in ids[p].tolist()] == [o["color"], o["shape"]]
                assert scores[p].tolist() == [1.0, 1.0]
    m = evaluate(torch.stack([labels[r["id"]][0] for r in rows]), gt)
    assert m["label_precision"] == 1.0 and m["top1"] == 1.0 and m["fg_labelled"] == 1.0
    assert m["bg_unlabelled"] == 1.0


@pytest.mark.parametrize("precision", [0.0, 0.1, 0.3, 0.6, 0.9])
def test_corruption_reaches_the_requested_precision(world_root: Path, precision: float) -> None:
    rows, words = _rows(world_root), _words(world_root)
    gt_file = world_root / "world" / "ground_truth" / "pretrain.jsonl"
    labels, gt = oracle_labels(rows, gt_file, words, GRID, precision=precision, seed=3)
    ids = torch.stack([labels[r["id"]][0] for r in rows])
    m = evaluate(ids, gt)
    assert abs(m["label_precision"] - precision) <= 0.02
    assert m["bg_unlabelled"] == 1.0 and m["fg_labelled"] == 1.0  # only words change, not coverage
    # a corrupted patch gets neither of its right words
    assert m["topn"] == pytest.approx(m["label_precision"], abs=1e-9)


def test_corruption_is_deterministic_and_keeps_shape() -> None:
    ids = torch.tensor([[[0, 5], [1, 6], [-1, -1], [2, 7], [3, 5], [4, 6]]])
    a, b = corrupt(ids, 0.4, seed=1), corrupt(ids, 0.4, seed=1)
    assert torch.equal(a, b) and a.shape == ids.shape
    assert a[0, 2].tolist() == [-1, -1]
    changed = (a != ids).any(-1).sum().item()
    assert changed == round(0.6 * 5)
    with pytest.raises(SeaError, match="precision"):
        corrupt(ids, 1.5, seed=0)


def test_missing_ground_truth_is_a_clear_error(world_root: Path, tmp_path: Path) -> None:
    with pytest.raises(SeaError, match="no ground truth"):
        oracle_labels(_rows(world_root), tmp_path / "nope.jsonl", _words(world_root), GRID)


@pytest.mark.parametrize("arm, precision", [("sea_oracle", 1.0), ("sea_p30", 0.3), ("sea", None)])
def test_align_picks_each_arms_label_source(world_root: Path, arm: str, precision: float | None) -> None:
    from omegaconf import OmegaConf

    from sea.config import compose
    from sea.stages.align import select_label_source
    from sea.training.arms import arm_config

    cfg = compose(["experiment=tiny", f"paths.root={world_root}", "tracking=none"])
    acfg = arm_config(OmegaConf.to_container(cfg.align, resolve=True), arm)
    clip = object.__new__(type("ClipLabels", (), {}))
    clip.words = _words(world_root)
    labels = select_label_source(acfg, _rows(world_root), clip, GRID)
    if precision is None:
        assert labels is clip
        return
    rows = _rows(world_root)
    _, gt = oracle_labels(rows, world_root / "world" / "ground_truth" / "pretrain.jsonl", clip.words, GRID)
    ids = torch.stack([labels.get(r["id"])[0] for r in rows])
    assert labels.words == clip.words
    assert abs(evaluate(ids, gt)["label_precision"] - precision) <= 0.02
