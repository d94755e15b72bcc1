"""Stage-1 caption-grounding probe: mention parsing and scoring against world ground truth."""

from __future__ import annotations

import pytest

from sea.eval.grounding import mentions, score_captions

COLORS, SHAPES = {"red", "blue", "green"}, {"circle", "star", "cross"}
ROWS = [
    {"image": "a.png", "objects": [{"color": "red", "shape": "circle"}, {"color": "blue", "shape": "star"}]},
    {"image": "b.png", "objects": [{"color": "green", "shape": "cross"}]},
]


def test_mentions_pairs_colours_with_the_next_shape() -> None:
    m = mentions("Two shapes on navy: a small red circle and blue stars; green.", COLORS, SHAPES)
    assert m["object"] == {("red", "circle"), ("blue", "star")}
    assert m["color"] == {"red", "blue", "green"} and m["shape"] == {"circle", "star"}
    # a colour followed by another colour does not borrow its shape
    assert mentions("red blue circle", COLORS, SHAPES)["object"] == {("blue", "circle")}


def test_perfect_captions_score_100_and_chance_is_lower() -> None:
    m = score_captions(["a red circle and a blue star", "a green cross"], ROWS)
    assert m["object_f1"] == 100.0 and m["color_f1"] == 100.0 and m["shape_f1"] == 100.0
    assert m["chance_object_f1"] == 0.0


def test_a_caption_that_ignores_the_image_scores_at_chance() -> None:
    same = ["a red circle"] * 2
    m = score_captions(same, ROWS)
    # the first image: 1 of 2 objects named, precision 1; the second: nothing right
    assert m["object_recall"] == pytest.approx(25.0)
    assert m["object_precision"] == pytest.approx(50.0)
    assert m["object_f1"] == pytest.approx(m["chance_object_f1"])


def test_empty_captions_are_counted_and_score_zero() -> None:
    m = score_captions(["", "a green cross"], ROWS)
    assert m["empty_captions"] == 50.0 and m["object_f1"] == 50.0
    with pytest.raises(ValueError):
        score_captions(["x"], ROWS)
