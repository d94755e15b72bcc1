"""GQA testdev-balanced: LLaVA's `scripts/convert_gqa_for_eval.py` (prediction = `text.rstrip('.').lower()`)
then the official `eval.py` accuracy (exact match with the question's `answer`, balanced questions only),
overall and per structural / semantic type.

Beyond the reference (whose `eval.py` raises KeyError): a balanced question without a prediction is an
error unless `allow_missing`, then it is scored wrong and counted in `counts["missing"]`; answers for ids
not in the annotation file are an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.answers import check_missing, match_answers
from sea.eval.outcomes import unit_outcomes
from sea.eval.scorers.common import Result, best_constant, pct, qid_key, require_path, result
from sea.utils.io import read_json


def gqa_prediction(text: str) -> str:
    """LLaVA's conversion: trailing periods stripped, then lowercased (nothing else)."""
    return text.rstrip(".").lower()


def score_gqa(
    answers: Sequence[dict[str, Any]],
    annotations: str | Path,
    questions: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Result:
    """Accuracy against GQA's `testdev_balanced_questions.json` (question id -> `{"answer", "types",
    "isBalanced"}`; `isBalanced` defaults to true)."""
    path = require_path(annotations, "gqa", "annotation file (testdev_balanced_questions.json)")
    data = read_json(path)
    if not isinstance(data, dict):
        raise SeaError(f"gqa: {path} must map question ids to questions (GQA's questions JSON)")
    table = {qid_key(k): v for k, v in data.items()}
    balanced = [k for k, q in table.items() if q.get("isBalanced", True)]
    matched, missing = match_answers(
        answers, table, "gqa", key=lambda a: qid_key(a["question_id"]), allow_missing=True, what=path.name
    )
    missing_balanced = [k for k in balanced if k not in matched]
    check_missing("gqa", missing_balanced, len(balanced), allow_missing, f"{path.name} (balanced)")
    total: list[int] = []
    by_type: dict[str, dict[str, list[int]]] = {"structural": {}, "semantic": {}}
    for k in balanced:
        q = table[k]
        ok = int(k in matched and gqa_prediction(matched[k]["text"]) == q.get("answer"))
        total.append(ok)
        types = q.get("types") or {}
        for group, per in by_type.items():
            if types.get(group) is not None:
                per.setdefault(str(types[group]), []).append(ok)
    metrics = {"accuracy": pct(float(sum(total)), len(total))}
    for group, per in by_type.items():
        metrics |= {f"{group}/{t}": pct(float(sum(v)), len(v)) for t, v in sorted(per.items())}
    out = result(
        "gqa",
        metrics,
        {
            "questions": len(balanced),
            "answered": len(balanced) - len(missing_balanced),
            "missing": len(missing_balanced),
        },
    )
    out["outcomes"] = unit_outcomes(
        "mean", "question", ["correct"], {"all": [(k, [ok]) for k, ok in zip(balanced, total, strict=True)]}
    )
    out["chance"] = best_constant([table[k].get("answer") for k in balanced], "accuracy")
    return out
