"""Label quality without ground truth (`sea.labeling.agreement`): caption agreement against chance,
diversity, distinctness, `auto`, and the guard; on hand-made labels and on the shapes world's captions
and ground truth."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from sea.config import CONF_DIR
from sea.errors import SeaError
from sea.labeling.agreement import (
    CaptionCheck,
    Guard,
    agreement_metrics,
    caption_word_mask,
    check_labels,
    drawn_agreement,
    drawn_label_warning,
    image_top_words,
    other_image,
    pick_variant,
    variants_of,
)

WORDS = ["red", "blue", "circle", "square", "gray", "the"]
CAPTIONS = ["A red circle on the gray background.", "A blue square."]

# conf/label/default.yaml's guard (the defaults live there only).
GUARD = Guard.from_config(
    yaml.safe_load((CONF_DIR / "label" / "default.yaml").read_text(encoding="utf-8"))["guard"]
)


def test_caption_words_are_content_words_of_the_list() -> None:
    mask = caption_word_mask(CAPTIONS, WORDS)
    # "the" is a stop-word, "background" is not in the word list
    assert mask.tolist() == [
        [True, False, True, False, True, False],
        [False, True, False, True, False, False],
    ]


def test_caption_words_of_a_lemmatised_list_are_read_as_lemmas() -> None:
    """Against a lemmatised list (`data.wordlist.lemmatize`), "circles" in a caption names "circle"; a
    token that is itself a word of the list counts as that word; plain reading matches forms only."""
    words = ["circle", "square", "glasses", "red"]
    captions = ["Two red circles and glasses.", "squares"]
    assert caption_word_mask(captions, words).tolist() == [[False, False, True, True], [False] * 4]
    assert caption_word_mask(captions, words, lemmatize=True).tolist() == [
        [True, False, True, True],
        [False, True, False, False],
    ]


def test_other_image_is_never_the_image_itself() -> None:
    pair = other_image(50)
    assert not torch.equal(pair, torch.arange(50)) and (pair != torch.arange(50)).all()
    assert torch.equal(pair, other_image(50))


def test_agreement_metrics_by_hand() -> None:
    mask = caption_word_mask(CAPTIONS, WORDS)
    # image 0: red, circle, blue, (empty); image 1: square, square, red, square. One label per patch.
    ids = torch.tensor([[[0], [2], [1], [-1]], [[3], [3], [0], [3]]])
    m = agreement_metrics(ids, mask, image_words=2)
    assert m["labelled_fraction"] == 7 / 8
    assert m["patch_agreement"] == pytest.approx(5 / 7)  # red, circle | square x3
    assert m["patch_chance"] == pytest.approx(2 / 7)  # blue on image 0, red on image 1 (swapped captions)
    assert m["top1_max_share"] == pytest.approx(3 / 7)
    assert m["top10_share"] == 1.0
    p = torch.tensor([2, 1, 1, 3]) / 7
    assert m["top1_entropy_bits"] == pytest.approx(float(-(p * p.log2()).sum()))
    tops = image_top_words(ids, len(WORDS), 2)
    assert tops[1].tolist() == [3, 0]
    assert m["image_agreement"] == 1.0
    # identical labels everywhere: no distinctness, one word on every patch
    same = torch.zeros(2, 4, 1, dtype=torch.long)
    flat = agreement_metrics(same, mask)
    assert flat["distinctness"] == 0.0 and flat["top1_max_share"] == 1.0 and flat["top1_entropy_bits"] == 0.0


def test_drawn_agreement_weights_each_kept_label_by_its_score() -> None:
    mask = caption_word_mask(CAPTIONS, WORDS)
    # image 0, patch 0: red (0.6, in its caption) or blue (0.2, not) -> 0.75; patch 1: empty (not counted)
    # image 1, patch 0: square alone -> 1; patch 1: red (0.3) or square (0.3) -> 0.5
    ids = torch.tensor([[[0, 1], [-1, -1]], [[3, -1], [0, 3]]])
    scores = torch.tensor([[[0.6, 0.2], [0.0, 0.0]], [[0.5, 0.0], [0.3, 0.3]]])
    m = drawn_agreement(ids, scores, mask)
    assert m["drawn_agreement"] == pytest.approx((0.75 + 1.0 + 0.5) / 3)
    # against the swapped captions: blue on image 0 (0.25); red on image 1 (0 then 0.5)
    assert m["drawn_chance"] == pytest.approx((0.25 + 0.0 + 0.5) / 3)
    # one label per patch: the drawn label is the first, as `patch_agreement` with top_k 1 reads it
    one = drawn_agreement(ids[..., :1], scores[..., :1], mask)
    assert one["drawn_agreement"] == pytest.approx(agreement_metrics(ids[..., :1], mask)["patch_agreement"])


def test_drawn_label_warning_fires_when_the_draw_loses_most_of_the_top1_margin() -> None:
    # the default world's labels before one label per patch: top-1 0.894 vs 0.184, drawn 0.572 vs 0.253
    old = {"patch_agreement": 0.894, "patch_chance": 0.184, "drawn_agreement": 0.572, "drawn_chance": 0.253}
    message = drawn_label_warning(old, 10)
    assert message and "label.top_n=10" in message and "0.319" in message and "0.710" in message
    now = {"patch_agreement": 0.947, "patch_chance": 0.171, "drawn_agreement": 0.947, "drawn_chance": 0.171}
    assert drawn_label_warning(now, 1) is None
    assert drawn_label_warning({**old, "patch_agreement": 0.1, "patch_chance": 0.2}, 10) is None  # at chance


def test_guard() -> None:
    good = {"patch_agreement": 0.6, "patch_chance": 0.3, "top1_max_share": 0.2, "labelled_fraction": 0.5}
    assert check_labels("maskclip/cosine", good, GUARD, 200) is None
    chance = {**good, "patch_agreement": 0.32}
    message = check_labels("proj/neg_cosine", chance, GUARD, 200)
    assert "no better than chance" in message and "label.guard.enabled=false" in message
    assert "\n" not in message
    assert check_labels("proj/neg_cosine", chance, replace(GUARD, enabled=False), 200) is None
    assert "collapsed" in check_labels("x/y", {**good, "top1_max_share": 0.9}, GUARD, 200)
    assert "empty" in check_labels("x/y", {**good, "labelled_fraction": 0.0}, GUARD, 200)
    with pytest.raises(SeaError, match="label.guard"):
        Guard.from_config({"min_lift": 1.5, "typo": 1})


def test_pick_variant_respects_the_configured_axis() -> None:
    report = {
        "proj/cosine": {"patch_agreement": 0.5, "patch_chance": 0.3},
        "proj/neg_cosine": {"patch_agreement": 0.2, "patch_chance": 0.3},
        "maskclip/cosine": {"patch_agreement": 0.7, "patch_chance": 0.3},
        "maskclip/neg_cosine": {"patch_agreement": 0.3, "patch_chance": 0.3},
    }
    assert set(variants_of("auto", "auto")) == set(report)
    assert pick_variant(report, variants_of("auto", "auto"))[0] == "maskclip/cosine"
    best, reason = pick_variant(report, variants_of("proj", "auto"))
    assert best == "proj/cosine" and "0.500 vs chance 0.300" in reason and "proj/neg_cosine" in reason


# ---- on the shapes world ------------------------------------------------------------------------------


def world_sample(root: Path) -> tuple[list[dict], list[str], list[str]]:
    rows = [json.loads(x) for x in (root / "prepared/manifests/pretrain.jsonl").read_text().splitlines()]
    samples = json.loads((root / "world/pretrain.json").read_text())
    captions = [next(t["value"] for t in s["conversations"] if t["from"] == "gpt") for s in samples]
    words = (root / "prepared/wordlist.txt").read_text().split()
    return rows, captions, words


def test_caption_agreement_ranks_labels_like_ground_truth(world_root: Path) -> None:
    """Oracle labels corrupted to decreasing precision: caption agreement above chance falls in the same
    order as ground-truth precision, and the guard stops the worst."""
    from sea.labeling.oracle import corrupt, oracle_ids
    from sea.labeling.quality import evaluate, ground_truth_on_grid, read_ground_truth

    rows, captions, words = world_sample(world_root)
    truth = read_ground_truth(world_root / "world/ground_truth/pretrain.jsonl")
    gt = ground_truth_on_grid([truth[r["image"]] for r in rows], [r["id"] for r in rows], (8, 8), words)
    mask = caption_word_mask(captions, words)
    precision, margin = [], []
    for p in (1.0, 0.7, 0.4, 0.0):
        ids = corrupt(oracle_ids(gt), p, seed=0)
        precision.append(evaluate(ids, gt)["label_precision"])
        m = agreement_metrics(ids[..., :1], mask)
        margin.append(m["patch_agreement"] - m["patch_chance"])
        failure = check_labels(f"oracle_p{p}", m, GUARD, len(rows))
        if p >= 0.7:
            assert failure is None, (p, m)
        elif p == 0.0:
            assert failure is not None and "no better than chance" in failure
    assert precision == sorted(precision, reverse=True) and margin == sorted(margin, reverse=True)


def test_wrong_sign_labels_are_caught(world_root: Path, tower) -> None:
    """Patch features that point at their object's colour word (the background's on background): cosine
    labels agree with the captions, the negated cosine labels every patch with its least similar words,
    and the guard stops them."""
    from sea.labeling.labeler import LabelSettings
    from sea.labeling.quality import read_ground_truth
    from sea.labeling.text import word_embeddings

    rows, captions, words = world_sample(world_root)
    truth = read_ground_truth(world_root / "world/ground_truth/pretrain.jsonl")
    text, _ = word_embeddings(tower, words)
    pos = {w: i for i, w in enumerate(words)}
    g = torch.Generator().manual_seed(0)
    feats = []
    for r in rows:
        t = truth[r["image"]]
        colour = {o["index"]: o["color"] for o in t["objects"]}
        word = [colour.get(k, t["background"]) for row in t["patch_objects"] for k in row]
        f = text[[pos[w] for w in word]] + 0.05 * torch.randn(len(word), text.shape[1], generator=g)
        feats.append(torch.nn.functional.normalize(f, dim=-1))
    feats = torch.stack(feats)
    check = CaptionCheck({"proj": feats, "maskclip": feats}, text, words, caption_word_mask(captions, words))
    report = check.variants()
    assert pick_variant(report, variants_of("auto", "auto"))[0].endswith("/cosine")
    settings = LabelSettings(feature="proj", sign="neg_cosine", background=LabelSettings().background)
    assert check_labels("proj/neg_cosine", check.labels(settings), GUARD, check.images) is not None
    assert check_labels("proj/cosine", check.labels(settings.with_variant("proj/cosine")), GUARD, 12) is None
    assert math.isclose(report["proj/cosine"]["labelled_fraction"], 1.0)


def test_stage_auto_records_the_choice_and_guard_stops_a_chance_labeler(label_cfg) -> None:
    from sea.config import select
    from sea.labeling.storage import load_labels
    from sea.stages import label as label_stage

    # the tiny random CLIP labels at chance: with the guard on, the stage stops before labeling
    with pytest.raises(SeaError, match="no better than chance") as err:
        label_stage.STAGE.run(label_cfg("label.guard.enabled=true"))
    assert "\n" not in str(err.value)
    assert not (Path(select(label_cfg(), "paths.labels")) / "manifest.json").exists()

    cfg = label_cfg("label.feature=auto", "label.sign=auto", "label.agreement.max_images=8")
    metrics = label_stage.STAGE.run(cfg)
    out = Path(select(cfg, "paths.labels"))
    manifest = load_labels(out).manifest
    choice = manifest["variant_choice"]
    assert (
        choice["configured"] == "auto/auto"
        and choice["variant"] == f"{manifest['feature']}/{manifest['sign']}"
    )
    assert choice["reason"].startswith("auto picked " + choice["variant"])
    assert metrics["agreement/auto"] == 1.0 and metrics["agreement/images"] == 8
    for v in variants_of("auto", "auto"):
        assert 0 <= metrics[f"agreement/{v}/patch_agreement"] <= 1
    assert metrics["agreement/labels/patch_chance"] >= 0 and "agreement/matches_truth_best" in metrics
    assert "stored: " + choice["variant"] in (out / "quality/agreement.md").read_text()
