"""Answer files: LLaVA's record format, reading errors, and matching with offending ids listed."""

from __future__ import annotations

from pathlib import Path

import pytest
from eval_helpers import answer

from sea.errors import SeaError
from sea.eval.answers import answer_id, make_answer, match_answers, read_answers, write_answers


def test_make_answer_key_order():
    a = make_answer(3, "p", "t", "m", "id")
    assert list(a) == ["question_id", "prompt", "text", "answer_id", "model_id", "metadata"]
    b = make_answer(3, "p", "t", "m", "id", round_id=0, options=["x", "y"], option_char=["A", "B"])
    assert list(b) == ["question_id", "round_id", "prompt", "text", "options", "option_char", *list(a)[3:]]


def test_answer_ids_are_short_and_deterministic():
    a = answer_id("m", "gqa", 1)
    assert len(a) == 22 and a == answer_id("m", "gqa", 1) != answer_id("m", "gqa", 2)


def test_read_answers_round_trip_and_errors(tmp_path: Path):
    path = write_answers(tmp_path / "a.jsonl", [answer(1, "yes"), answer("x", "caf\u00e9")])
    assert [a["text"] for a in read_answers(path)] == ["yes", "caf\u00e9"]
    (tmp_path / "bad.jsonl").write_text('{"question_id": 1, "text": "a"}\n{oops\n')
    with pytest.raises(SeaError, match=r"bad.jsonl:2: invalid JSON"):
        read_answers(tmp_path / "bad.jsonl")
    (tmp_path / "notext.jsonl").write_text('{"question_id": 1}\n')
    with pytest.raises(SeaError, match="no string 'text'"):
        read_answers(tmp_path / "notext.jsonl")
    with pytest.raises(SeaError, match="not found"):
        read_answers(tmp_path / "missing.jsonl")


def test_match_answers_lists_offending_ids():
    answers = [answer(i, "x") for i in range(30)] + [answer(100, "x"), answer(101, "x")]
    with pytest.raises(SeaError, match=r"2 answer\(s\) match nothing.*100, 101"):
        match_answers(answers, range(30), "demo")
    with pytest.raises(SeaError, match=r"question\(s\) answered more than once: 1$"):
        match_answers([answer(1, "a"), answer(1, "b")], [1], "demo")
    with pytest.raises(SeaError, match=r"25 of 30 question\(s\).*\(first 20 of 25\)"):
        match_answers(answers[:5], range(30), "demo")
    matched, missing = match_answers(answers[:5], range(30), "demo", allow_missing=True)
    assert sorted(matched) == [0, 1, 2, 3, 4] and missing == list(range(5, 30))
