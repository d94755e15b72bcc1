"""Label quality metrics against ground truth, and the label-map drawing."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image

from sea.labeling.quality import best_variant, draw_label_map, evaluate, ground_truth_on_grid

WORDS = ["red", "blue", "circle", "square", "background"]
# 2x2 truth: object 1 (red circle) top-left, object 2 (blue square) bottom-right, the rest background
RECORD = {
    "patch_objects": [[1, 0], [0, 2]],
    "objects": [
        {"index": 1, "color": "red", "shape": "circle"},
        {"index": 2, "color": "blue", "shape": "star"},
    ],
}


def test_ground_truth_on_grid_maps_and_names_words() -> None:
    gt = ground_truth_on_grid([RECORD], ["a"], (2, 2), WORDS)
    assert gt.objects.tolist() == [[1, 0, 0, 2]]
    assert gt.words[0, 0].tolist() == [0, 2]
    assert gt.words[0, 3].tolist() == [1, -2]  # "star" is not in the word list
    fine = ground_truth_on_grid([RECORD], ["a"], (4, 4), WORDS)
    assert fine.objects.reshape(4, 4).tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]]


def test_evaluate() -> None:
    gt = ground_truth_on_grid([RECORD], ["a"], (2, 2), WORDS)
    # patches: circle (right) | background, empty | background, 'blue' | square, blue
    ids = torch.tensor([[[2, 0], [-1, -1], [1, -1], [3, 1]]])
    m = evaluate(ids, gt)
    assert m["top1"] == 0.5  # object 1 right by shape; object 2's top-1 'square' is wrong
    assert m["topn"] == 1.0  # 'blue' is among object 2's labels
    assert m["top1_shape"] == 0.5 and m["top1_color"] == 0.0
    assert m["fg_labelled"] == 1.0 and m["bg_unlabelled"] == 0.5
    assert math.isclose(m["label_precision"], 1 / 3)


def test_best_variant() -> None:
    report = {"proj/cosine/top1": 0.3, "maskclip/cosine/top1": 0.6, "maskclip/neg_cosine/top1": float("nan")}
    assert best_variant(report) == "maskclip/cosine"


def test_draw_label_map(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16), (200, 0, 0)).save(tmp_path / "img.png")
    gt = ground_truth_on_grid([RECORD], ["a"], (2, 2), WORDS)
    ids = torch.tensor([[2, 0], [-1, -1], [1, -1], [3, 1]])
    out = draw_label_map(
        tmp_path / "img.png",
        {"maskclip/cosine": ids, "proj/cosine": ids},
        gt.objects[0],
        gt.words[0],
        (2, 2),
        WORDS,
        tmp_path / "maps" / "a.png",
        title="a",
    )
    with Image.open(out) as img:
        assert img.size[0] > 3 * img.size[1] // 2  # three panels side by side


def test_sampled_precision_is_the_chance_that_a_score_weighted_draw_is_right() -> None:
    gt = ground_truth_on_grid([RECORD], ["a"], (2, 2), WORDS)
    # object 1: 'circle' (right, 0.6) or 'blue' (wrong, 0.2) -> 0.75; background patch labelled -> 0;
    # object 2: 'blue' alone (right) -> 1; one background patch unlabelled (not counted)
    ids = torch.tensor([[[2, 1], [0, -1], [-1, -1], [1, -1]]])
    scores = torch.tensor([[[0.6, 0.2], [0.3, 0.0], [0.0, 0.0], [0.4, 0.0]]])
    m = evaluate(ids, gt, scores)
    assert math.isclose(m["sampled_precision"], (0.75 + 0.0 + 1.0) / 3, rel_tol=1e-6)
    assert math.isclose(m["label_precision"], 2 / 3)
    assert "sampled_precision" not in evaluate(ids, gt)  # needs the scores
    one = evaluate(ids[..., :1], gt, scores[..., :1])  # one label per patch: the draw is the top-1
    assert math.isclose(one["sampled_precision"], one["label_precision"], rel_tol=1e-6)
