"""Scoring rules a planted bug once broke unnoticed (issue 12, item 9): POPE pairs labels with questions by
position (the reference zips them), and VQAv2 normalises the human answers only when they disagree."""

from __future__ import annotations

from pathlib import Path

from eval_helpers import answer, write_jsonl

from sea.eval.scorers.pope import score_pope
from sea.eval.scorers.vqa import vqav2_accuracy


def test_pope_pairs_labels_by_position_not_by_question_id(tmp_path: Path):
    """The label file's question ids differ from the question file's (reversed): only the position pairs."""
    qs = [
        {"question_id": i, "image": "a.jpg", "text": "Is there a cat?", "category": "random"}
        for i in (1, 2, 3, 4)
    ]
    gold = ["yes", "yes", "yes", "no"]
    labels = [
        {"question_id": 5 - i, "image": "a.jpg", "label": g} for i, g in zip((1, 2, 3, 4), gold, strict=True)
    ]
    qfile = write_jsonl(tmp_path / "llava_pope_test.jsonl", qs)
    write_jsonl(tmp_path / "coco" / "coco_pope_random.json", labels)
    answers = [answer(i, t) for i, t in zip((1, 2, 3, 4), ("Yes", "Yes", "Yes", "No"), strict=True)]
    res = score_pope(answers, tmp_path / "coco", qfile)
    assert res["splits"]["random"]["accuracy"] == 100.0  # by id it would be 50.0


def test_vqav2_normalises_human_answers_only_when_they_disagree():
    # agreeing answers stay as typed: "two" is not turned into "2", so the processed prediction misses
    assert vqav2_accuracy("Two", ["two"] * 10) == 0.0
    assert vqav2_accuracy("2", ["two"] * 10) == 0.0
    # disagreeing answers are normalised (digits, articles, punctuation) on both sides
    assert vqav2_accuracy("Two", ["two"] * 9 + ["2"]) == 1.0
    assert vqav2_accuracy("a dog.", ["dog"] * 9 + ["the dog"]) == 1.0
