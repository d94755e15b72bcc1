"""Upload files for the benchmarks whose ground truth an evaluation server holds, exactly as LLaVA's
conversion scripts write them from an answer file:

- `vqav2` (`scripts/convert_vqav2_for_submission.py`): a JSON list of `{"question_id", "answer"}` over
  the **full** test2015 question list (`all_questions`), `EvalAIAnswerProcessor` on each answer, `""` for
  the questions not answered (test-standard);
- `vizwiz` (`scripts/convert_vizwiz_for_submission.py`): a JSON list of `{"image", "answer"}` over the
  question file, `EvalAIAnswerProcessor` on each answer;
- `mmbench` (`scripts/convert_mmbench_for_submission.py`): the TSV as pandas `read_table` reads it,
  without `hint, category, source, image, comment, l2-category`, with a `prediction` column inserted at
  position 6, as .xlsx;
- `mmvet` (`scripts/convert_mmvet_for_eval.py`): a JSON object `{"v1_<question_id>": text}` in answer
  order, indent 2.

Both sides are checked first (the scripts do not): an answer whose id is not in the question file is an
error, and so is a question without an answer unless `allow_missing` (then its answer is empty, as
convert_vqav2_for_submission.py writes for the ids it lacks).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.answers import check_missing, listing
from sea.eval.normalize import EvalAIAnswerProcessor
from sea.eval.scorers.common import qid_key
from sea.utils.io import read_jsonl

EXTENSIONS = {"vqav2": ".json", "vizwiz": ".json", "mmbench": ".xlsx", "mmvet": ".json"}
# What scores each upload, for the report and the `server` entry of scores.json.
SERVERS = {
    "vqav2": "EvalAI VQA Challenge (test-dev)",
    "vizwiz": "EvalAI VizWiz-VQA (test)",
    "mmbench": "MMBench submission server (OpenCompass)",
    "mmvet": "MM-Vet GPT-4 grader",
}
MMBENCH_DROPPED = ["hint", "category", "source", "image", "comment", "l2-category"]


def _answer_texts(answers: Sequence[dict[str, Any]], ids: Sequence[Any], kind: str, what: str) -> dict:
    """`{qid_key: text}` (a repeated id keeps its last text, as the scripts' dicts do); SeaError for
    answers whose id is not in `ids`."""
    known = {qid_key(i) for i in ids}
    unknown = [a["question_id"] for a in answers if qid_key(a["question_id"]) not in known]
    if unknown:
        raise SeaError(
            f"{kind} upload: {len(unknown)} answer(s) match no question of {what}: {listing(unknown)}"
        )
    return {qid_key(a["question_id"]): a["text"] for a in answers}


def _counts(questions: int, missing: int, rows: int) -> dict[str, int]:
    return {"questions": questions, "answered": questions - missing, "missing": missing, "rows": rows}


def _json_rows(path: Path, kind: str) -> list[dict[str, Any]]:
    rows = read_jsonl(path)
    bad = [n for n, r in enumerate(rows, start=1) if not isinstance(r, dict) or "question_id" not in r]
    if bad:
        raise SeaError(f"{kind} upload: {path}: question {bad[0]} has no 'question_id'")
    return rows


def vqav2_upload(
    answers: Sequence[dict[str, Any]], questions: Path, all_questions: Path | None, allow_missing: bool
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    if all_questions is None:
        raise SeaError(
            "vqav2 upload: needs the full test2015 question list (llava_vqav2_mscoco_test2015.jsonl)"
        )
    split = _json_rows(questions, "vqav2")
    everything = _json_rows(all_questions, "vqav2")
    texts = _answer_texts(answers, [q["question_id"] for q in everything], "vqav2", all_questions.name)
    missing = [q["question_id"] for q in split if qid_key(q["question_id"]) not in texts]
    check_missing("vqav2 upload", missing, len(split), allow_missing, questions.name)
    proc = EvalAIAnswerProcessor()
    rows = [
        {
            "question_id": q["question_id"],
            "answer": proc(texts[k]) if (k := qid_key(q["question_id"])) in texts else "",
        }
        for q in everything
    ]
    return rows, _counts(len(split), len(missing), len(rows))


def vizwiz_upload(
    answers: Sequence[dict[str, Any]], questions: Path, allow_missing: bool
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    split = _json_rows(questions, "vizwiz")
    texts = _answer_texts(answers, [q["question_id"] for q in split], "vizwiz", questions.name)
    missing = [q["question_id"] for q in split if qid_key(q["question_id"]) not in texts]
    check_missing("vizwiz upload", missing, len(split), allow_missing, questions.name)
    proc = EvalAIAnswerProcessor()
    rows = [{"image": q["image"], "answer": proc(texts.get(qid_key(q["question_id"]), ""))} for q in split]
    return rows, _counts(len(split), len(missing), len(rows))


def mmvet_upload(
    answers: Sequence[dict[str, Any]], questions: Path, allow_missing: bool
) -> tuple[dict[str, str], dict[str, int]]:
    split = _json_rows(questions, "mmvet")
    texts = _answer_texts(answers, [q["question_id"] for q in split], "mmvet", questions.name)
    missing = [q["question_id"] for q in split if qid_key(q["question_id"]) not in texts]
    check_missing("mmvet upload", missing, len(split), allow_missing, questions.name)
    out: dict[str, str] = {}
    for a in answers:
        out[f"v1_{a['question_id']}"] = a["text"]
    return out, _counts(len(split), len(missing), len(out))


def mmbench_upload(
    answers: Sequence[dict[str, Any]], tsv: Path, allow_missing: bool
) -> tuple[tuple[list[str], list[list[Any]]], dict[str, int]]:
    """(header, rows) of the xlsx: the TSV as pandas reads it, minus the dropped columns, with the
    predictions."""
    import pandas as pd

    try:
        df = pd.read_table(tsv)
    except (OSError, ValueError) as e:
        raise SeaError(f"mmbench upload: cannot read {tsv}: {e}") from e
    absent = [c for c in [*MMBENCH_DROPPED, "index"] if c not in df.columns]
    if absent:
        raise SeaError(f"mmbench upload: {tsv} lacks the column(s) {absent} LLaVA's conversion drops")
    out = df.drop(columns=MMBENCH_DROPPED)
    out.insert(6, "prediction", None)
    ids = [int(i) for i in df["index"]]
    texts = _answer_texts(answers, ids, "mmbench", tsv.name)
    missing = [i for i in ids if qid_key(i) not in texts]
    check_missing("mmbench upload", missing, len(ids), allow_missing, tsv.name)
    for a in answers:
        out.loc[df["index"] == int(a["question_id"]), "prediction"] = a["text"]
    rows = [[v.item() if hasattr(v, "item") else v for v in row] for row in out.itertuples(index=False)]
    return ([str(c) for c in out.columns], rows), _counts(len(ids), len(missing), len(rows))


def write_upload(
    kind: str,
    answers: Sequence[dict[str, Any]],
    path: str | Path,
    questions: str | Path,
    *,
    all_questions: str | Path | None = None,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Write the `kind` upload file for `answers` to `path`; returns its counts and the server."""
    from sea.utils.io import atomic_write_text

    path, questions = Path(path), Path(questions)
    if kind not in EXTENSIONS:
        raise SeaError(f"unknown upload kind {kind!r}; known: {', '.join(sorted(EXTENSIONS))}")
    if not questions.is_file():
        raise SeaError(f"{kind} upload: question file not found: {questions}")
    if kind == "mmbench":
        from sea.eval.xlsx import write_xlsx

        (header, rows), counts = mmbench_upload(answers, questions, allow_missing)
        write_xlsx(path, header, rows)
    else:
        if kind == "vqav2":
            data, counts = vqav2_upload(
                answers, questions, Path(all_questions) if all_questions else None, allow_missing
            )
            text = json.dumps(data)
        elif kind == "vizwiz":
            data, counts = vizwiz_upload(answers, questions, allow_missing)
            text = json.dumps(data)
        else:
            data, counts = mmvet_upload(answers, questions, allow_missing)
            text = json.dumps(data, indent=2)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    return {"file": str(path), "server": SERVERS[kind], "counts": counts}
