"""SEED-Bench as LLaVA's `scripts/convert_seed_for_submission.py`: exact match `text == answer` (no
normalisation at all), accuracy per question type, total, image-only and video-only.

A question without an answer is an error unless `allow_missing`; then it is wrong (as in the reference)
and counted in `counts["missing"]`. Answers
for ids not in `SEED-Bench.json` are an error. Empty image/video subsets are left out (the reference
divides by zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.answers import match_answers
from sea.eval.scorers.common import Result, pct, qid_key, require_path, result
from sea.utils.io import read_json


def score_seed(
    answers: Sequence[dict[str, Any]],
    annotations: str | Path,
    questions: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Result:
    """Accuracies (percent) against `SEED-Bench.json` (`questions` with `question_id`, `answer`,
    `question_type_id`, `data_type`; `question_type` name -> id)."""
    path = require_path(annotations, "seed", "annotation file (SEED-Bench.json)")
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise SeaError(f"seed: {path} has no 'questions' list (expected SEED-Bench.json)")
    type_names = {v: k for k, v in (data.get("question_type") or {}).items()}
    table = {qid_key(q["question_id"]): q for q in data["questions"]}
    matched, missing = match_answers(
        answers, table, "seed", key=lambda a: qid_key(a["question_id"]), allow_missing=allow_missing,
        what=path.name,
    )  # fmt: skip
    per_type: dict[Any, list[int]] = {}
    per_data: dict[str, list[int]] = {}
    for k, q in table.items():
        ok = int(k in matched and matched[k]["text"] == q["answer"])
        per_type.setdefault(q.get("question_type_id"), []).append(ok)
        per_data.setdefault(str(q.get("data_type", "image")), []).append(ok)
    total = sum(sum(v) for v in per_type.values())
    metrics: dict[str, float | None] = {"accuracy": pct(total, len(table))}
    for d in ("image", "video"):
        if d in per_data:
            metrics[f"{d}_accuracy"] = pct(sum(per_data[d]), len(per_data[d]))
    for t in sorted(per_type, key=str):
        name = type_names.get(t, str(t))
        metrics[f"type/{name}"] = pct(sum(per_type[t]), len(per_type[t]))
    return result(
        "seed", metrics, {"questions": len(table), "answered": len(matched), "missing": len(missing)}
    )
