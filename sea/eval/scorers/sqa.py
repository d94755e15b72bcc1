"""ScienceQA-IMG as LLaVA's `llava/eval/eval_science_qa.py` (v1.5, run after `model_vqa_science
--single-pred-prompt`).

Letter parsing: the text is exactly one of A-E; or it starts with "X. "; or the regex
`The answer is ([A-Z]).` (any character after the letter) matches exactly once; otherwise FAILED. A letter
beyond the problem's choices is wrong. Accuracy is over the split's problems; IMG-Accuracy (LLaVA's "SQA"
number) over those whose answer prompt contains `<image>`.

Answer lines as in the reference, which looks answers up by the split's problem ids: a line whose id is a
problem of another split (`counts["other_split"]`) or no problem at all (`counts["unknown"]`) is ignored,
and an id answered twice keeps its last line (`counts["duplicates"]`); `strict=True` (`--strict`) refuses
all three instead. A problem without an answer is an error unless `allow_missing`; then it counts as
FAILED as in the reference, which also files it as text-only (its prompt is 'Unknown'), shrinking the IMG
subset - here its IMG membership comes from the problem's `image` field instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.answers import listing, match_answers
from sea.eval.scorers.common import Result, pct, qid_key, require_path, result
from sea.utils.io import read_json

OPTIONS = ("A", "B", "C", "D", "E")
_ANSWER_IS = re.compile(r"The answer is ([A-Z]).")


def sqa_letter(text: str, options: Sequence[str] = OPTIONS) -> str:
    """The parsed letter, or 'FAILED'."""
    if text in options:
        return text
    if len(text) >= 3 and text[0] in options and text[1:3] == ". ":
        return text[0]
    found = _ANSWER_IS.findall(text)
    return found[0] if len(found) == 1 else "FAILED"


def sqa_pred_index(letter: str, choices: Sequence[Any], options: Sequence[str] = OPTIONS) -> int:
    """`get_pred_idx`: the option index when the letter is within the problem's choices, else -1."""
    return list(options).index(letter) if letter in options[: len(choices)] else -1


def _load_problems(annotations: Path, split: str) -> tuple[dict[str, dict], set[str]]:
    """(the split's problems by id, every problem id of problems.json)."""
    folder = annotations if annotations.is_dir() else annotations.parent
    problems_path = annotations if annotations.is_file() else folder / "problems.json"
    problems = read_json(problems_path)
    splits = read_json(folder / "pid_splits.json")
    if split not in splits:
        raise SeaError(f"sqa: split {split!r} not in {folder / 'pid_splits.json'} ({sorted(splits)})")
    absent = [pid for pid in splits[split] if pid not in problems]
    if absent:
        raise SeaError(f"sqa: {len(absent)} ids of split {split!r} are not in {problems_path.name}")
    return {qid_key(pid): problems[pid] for pid in splits[split]}, {qid_key(pid) for pid in problems}


def score_sqa(
    answers: Sequence[dict[str, Any]],
    annotations: str | Path,
    questions: str | Path | None = None,
    *,
    allow_missing: bool = False,
    split: str = "test",
    strict: bool = False,
) -> Result:
    """Accuracy and IMG-accuracy; `annotations` is ScienceQA's folder with `problems.json` and
    `pid_splits.json` (or the path of `problems.json`)."""
    path = require_path(annotations, "sqa", "ScienceQA folder (problems.json, pid_splits.json)")
    problems, known = _load_problems(path, split)
    ids = [qid_key(a["question_id"]) for a in answers]
    other_split = [i for i in dict.fromkeys(ids) if i not in problems and i in known]
    unknown = [i for i in dict.fromkeys(ids) if i not in known]
    duplicates = len(ids) - len(set(ids))
    if strict and (other_split or unknown or duplicates):
        raise SeaError(
            f"sqa (strict): {len(other_split)} answer id(s) of splits other than {split!r}, {len(unknown)} "
            f"not in problems.json, {duplicates} repeated line(s): {listing(other_split + unknown)}"
        )
    matched, missing = match_answers(
        [a for a, i in zip(answers, ids, strict=True) if i in problems], problems, "sqa",
        key=lambda a: qid_key(a["question_id"]), allow_missing=allow_missing, allow_duplicates=True,
        what=f"ScienceQA split {split!r}",
    )  # fmt: skip
    correct = img_correct = img_total = failed = 0
    for pid, prob in problems.items():
        answer = matched.get(pid)
        letter = sqa_letter(answer["text"]) if answer is not None else "FAILED"
        failed += letter == "FAILED"
        ok = sqa_pred_index(letter, prob["choices"]) == prob["answer"]
        multimodal = (
            "<image>" in str(answer.get("prompt", "")) if answer is not None else bool(prob.get("image"))
        )
        correct += ok
        img_total += multimodal
        img_correct += ok and multimodal
    metrics = {"accuracy": pct(correct, len(problems)), "img_accuracy": pct(img_correct, img_total)}
    counts = {
        "questions": len(problems),
        "answered": len(matched),
        "missing": len(missing),
        "failed": failed,
        "img_questions": img_total,
        "other_split": len(other_split),
        "unknown": len(unknown),
        "duplicates": duplicates,
    }
    return result("sqa", metrics, counts)
