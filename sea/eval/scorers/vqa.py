"""VQA soft accuracy: TextVQA as LLaVA's `eval_textvqa.py` + `m4c_evaluator.py`, VQAv2-val as lmms-eval's
`tasks/vqav2/utils.py` (LLaVA scores VQAv2 test-dev on the EvalAI server; this is the local proxy).

Soft accuracy of a prediction against n human answers: the mean over annotators i of
`min(1, #{j != i : answer_j == prediction} / 3)` (leave one annotator out).

Beyond the reference: a question without exactly ten human answers (the reference asserts ten) is scored
with the same formula over the answers it has (0 when it has none) and counted in `counts["not_ten_answers"]`.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.answers import check_missing, listing, match_answers
from sea.eval.normalize import EvalAIAnswerProcessor
from sea.eval.scorers.common import Result, pct, qid_key, require_path, result
from sea.utils.io import read_json

_PROC = EvalAIAnswerProcessor()


# ----------------------------------------------------------------------------------------- TextVQA


def textvqa_answer_scores(raw_answers: Sequence[str]) -> dict[str, float]:
    """Soft score of every distinct normalised human answer (`_compute_answer_scores`)."""
    answers = [_PROC(a) for a in raw_answers]
    scores: dict[str, float] = {}
    for unique in set(answers):
        accs = []
        for i in range(len(answers)):
            matching = sum(1 for j, a in enumerate(answers) if j != i and a == unique)
            accs.append(min(1, float(matching) / 3))
        scores[unique] = sum(accs) / len(accs)
    return scores


def textvqa_accuracy(prediction: str, raw_answers: Sequence[str]) -> float:
    """Soft accuracy of one prediction (0.0 when it matches no human answer, or there are none)."""
    return textvqa_answer_scores(raw_answers).get(_PROC(prediction), 0.0)


def textvqa_prompt_question(prompt: str) -> str:
    """The question recovered from an answer's `prompt`, lowercased (`eval_textvqa.prompt_processor`)."""
    lines = prompt.split("\n")
    if prompt.startswith("OCR tokens: "):
        match = re.search(r"Question: (.*?) Short answer:", prompt, re.DOTALL)
        if match is None:
            raise SeaError(f"textvqa: no 'Question: ... Short answer:' in prompt {prompt[:80]!r}")
        question = match.group(1)
    elif "Reference OCR token: " in prompt and len(lines) == 3:
        question = lines[1] if prompt.startswith("Reference OCR token:") else lines[0]
    elif "Reference OCR token: " in prompt and len(lines) == 2:
        question = lines[1].replace("Question: ", "")
    elif len(lines) == 2:
        question = lines[0]
    else:
        raise SeaError(
            f"textvqa: cannot recover the question from prompt {prompt[:80]!r} (expected LLaVA's "
            "'<question>\\nReference OCR token: ...\\n<suffix>' or '<question>\\n<suffix>')"
        )
    if question.startswith("Question: "):
        question = question.replace("Question: ", "")
    return question.lower()


def score_textvqa(
    answers: Sequence[dict[str, Any]],
    annotations: str | Path,
    questions: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Result:
    """Accuracy over the answer lines, joined to `TextVQA_0.5.1_val.json` on (image_id, question.lower()).

    As in the reference, every answer line is scored (question ids are image ids and repeat) and a
    repeated annotation key keeps its last entry. An answer that matches no annotation is an error;
    annotated questions without an answer are an error unless `allow_missing` (then, like the reference,
    the accuracy is over the answered questions).
    """
    path = require_path(annotations, "textvqa", "annotation file (TextVQA_0.5.1_val.json)")
    data = read_json(path)
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise SeaError(f"textvqa: {path} has no 'data' list (expected TextVQA_0.5.1_val.json)")
    table = {(qid_key(r["image_id"]), str(r["question"]).lower()): r for r in rows}
    keys = [(qid_key(a["question_id"]), textvqa_prompt_question(str(a.get("prompt", "")))) for a in answers]
    unknown = [k for k in dict.fromkeys(keys) if k not in table]
    if unknown:
        raise SeaError(
            f"textvqa: {len(unknown)} answer(s) match no (image_id, question) in {path.name}: "
            f"{listing(unknown)}"
        )
    answered = set(keys)
    missing = [k for k in table if k not in answered]
    check_missing("textvqa", missing, len(table), allow_missing, path.name)
    scores, not_ten = [], 0
    for a, k in zip(answers, keys, strict=True):
        gt = list(table[k].get("answers") or [])
        not_ten += len(gt) != 10
        scores.append(textvqa_accuracy(a["text"], gt) if gt else 0.0)
    return result(
        "textvqa",
        {"accuracy": pct(sum(scores), len(scores))},
        {
            "answers": len(answers),
            "annotated": len(table),
            "missing": len(missing),
            "not_ten_answers": not_ten,
        },
    )


# ----------------------------------------------------------------------------------------- VQAv2


def vqav2_accuracy(prediction: str, gt_answers: Sequence[str]) -> float:
    """lmms-eval's VQAv2 accuracy of one prediction: the full processor on the prediction; when the
    human answers disagree, punctuation + digit/article processing of both sides again; leave-one-out
    `min(1, matches / 3)` averaged with `statistics.mean` (as lmms-eval does)."""
    res = _PROC(prediction)
    gts = [a.replace("\n", " ").replace("\t", " ").strip() for a in gt_answers]
    if not gts:
        return 0.0
    if len(set(gts)) > 1:
        gts = [_PROC.process_digit_article(_PROC.process_punctuation(a)) for a in gts]
        res = _PROC.process_digit_article(_PROC.process_punctuation(res))
    accs = []
    for i in range(len(gts)):
        # lmms-eval drops the annotator's own answer dict; dicts carry an answer_id, so it is by position.
        matching = sum(1 for j, a in enumerate(gts) if j != i and a == res)
        accs.append(min(1, float(matching) / 3))
    return statistics.mean(accs)


def _vqav2_records(data: Any, path: Path) -> list[dict[str, Any]]:
    rows = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise SeaError(f"vqav2: {path} is neither a VQA annotation file ('annotations' list) nor a list")
    return rows


def score_vqav2(
    answers: Sequence[dict[str, Any]],
    annotations: str | Path,
    questions: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Result:
    """Soft accuracy against VQA-format annotations (`v2_mscoco_val2014_annotations.json`: records with
    `question_id`, `answers: [{"answer": ...}] x 10`, `answer_type`); overall and per answer type.
    Missing answers are an error unless `allow_missing` (then scored over the answered questions)."""
    path = require_path(annotations, "vqav2", "annotation file")
    rows = _vqav2_records(read_json(path), path)
    table = {qid_key(r["question_id"]): r for r in rows}
    matched, missing = match_answers(
        answers, table, "vqav2", key=lambda a: qid_key(a["question_id"]), allow_missing=allow_missing,
        what=path.name,
    )  # fmt: skip
    per_type: dict[str, list[float]] = {}
    scores, not_ten = [], 0
    for k, a in matched.items():
        gt = [x["answer"] if isinstance(x, dict) else str(x) for x in table[k].get("answers") or []]
        not_ten += len(gt) != 10
        s = vqav2_accuracy(a["text"], gt)
        scores.append(s)
        per_type.setdefault(str(table[k].get("answer_type", "unknown")), []).append(s)
    metrics = {"accuracy": pct(sum(scores), len(scores))}
    metrics |= {f"answer_type/{t}": pct(sum(v), len(v)) for t, v in sorted(per_type.items())}
    return result(
        "vqav2",
        metrics,
        {
            "questions": len(table),
            "answered": len(matched),
            "missing": len(missing),
            "not_ten_answers": not_ten,
        },
    )
