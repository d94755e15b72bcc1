"""MMBench circular evaluation as lmms-eval's offline (`static`) MMBench evaluation
(`tasks/mmbench/mmbench_evals.py`, `MMBench_Evaluator.eval_sub_data` / `eval_result`), on the dev TSV
whose rows with `index >= 1e6` are option-shifted copies of row `index % 1e6`.

A question is right only when every copy is right. The letter of each copy comes from the first of three
paths that reads one, and `counts["path/<name>"]` says how many copies each path decided:

- `option`: `can_infer_option`, a single standalone A-E token, also decorated as `X.` `X,` `X:` `X)`
  `X).` `(X)` `(X).` `:X` `:X,` `:X.` `:X)` `:X).`; declined when "A" is a token of an answer longer than
  3 words ("A" being maybe a quantifier);
- `text`: `can_infer_text`, exactly one option text occurs in the lowercased answer;
- `mcq_extract`: where lmms-eval asks a GPT judge, its `static` mode runs the rule-based extractor
  `extract_mcq_answer` over the row's option letters (`sea.eval.mcq_extract`);
- `unparsed`: no path reads a letter: the copy is wrong.

Accuracy overall and per `category` / `l2-category` in `details` (lmms-eval's `calculate_hit_rates`);
`vanilla_accuracy` scores the original rows (index < 1e6) alone.

The TSV is read as LLaVA's `model_vqa_mmbench` reads it with pandas: a cell is missing when empty or one of
pandas' NA strings ("NA", "N/A", "null", "nan", "None", ...), and LLaVA's `is_none` also treats any case
of "nan"/"none" as missing; options stop at the first missing one. A missing answer is an error unless
`allow_missing` (then it counts as a wrong copy). An answer file from `--all-rounds` (one index answered
several times) is refused: the TSV's copies already rotate the options.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.answers import match_answers
from sea.eval.mcq_extract import extract_mcq_answer
from sea.eval.outcomes import unit_outcomes
from sea.eval.scorers.common import Result, pct, require_path, result

CIRCULAR_OFFSET = 1_000_000
ALL_OPTIONS = ("A", "B", "C", "D")
# pandas.read_table's default NA strings (pandas 2.x), which LLaVA's loader inherits.
PANDAS_NA = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
     "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
_DECORATIONS = (
    ("", "."), ("", ","), ("", ":"), ("", ")"), ("", ")."), ("(", ")"), ("(", ")."),
    (":", ""), (":", ","), (":", "."), (":", ")"), (":", ")."),
)  # fmt: skip


def is_none(value: Any) -> bool:
    """Missing as pandas + LLaVA's `is_none` see a TSV cell."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    s = str(value)
    return s in PANDAS_NA or s.lower() in ("nan", "none")


def row_options(row: dict[str, Any], letters: Sequence[str] = ALL_OPTIONS) -> list[str]:
    """The option texts in letter order, up to the first missing one (`get_options`)."""
    out = []
    for c in letters:
        if is_none(row.get(c)):
            break
        out.append(str(row[c]))
    return out


def read_mmbench_tsv(path: str | Path) -> list[dict[str, Any]]:
    """The TSV rows as dicts (`index` as int); a short image reference (VLMEvalKit stores a repeated image
    as the index of the row holding it) is resolved to that row's base64 image."""
    from sea.data.llava import iter_tsv_rows

    rows = []
    for rec in iter_tsv_rows(path):
        if rec.error:
            raise SeaError(f"mmbench: {path}:{rec.line}: {rec.error}")
        row = dict(rec.value)
        try:
            row["index"] = int(str(row["index"]).strip())
        except (KeyError, ValueError) as e:
            raise SeaError(f"mmbench: {path}:{rec.line}: 'index' must be an integer") from e
        rows.append(row)
    by_index = {r["index"]: r for r in rows}
    for r in rows:
        img = str(r.get("image", "")).strip()
        if img and len(img) <= 64 and img.lstrip("-").isdigit() and int(img) in by_index:
            r["image"] = by_index[int(img)]["image"]
    return rows


def mmbench_prompt(row: dict[str, Any]) -> tuple[str, list[str]]:
    """LLaVA's `model_vqa_mmbench` question text (hint + question + lettered options) and the options."""
    options = row_options(row)
    question = str(row["question"])
    if not is_none(row.get("hint")):
        question = str(row["hint"]) + "\n" + question
    for letter, option in zip(ALL_OPTIONS, options, strict=False):
        question = question + "\n" + letter + ". " + option
    return question, options


def can_infer_option(answer: str, num_choice: int = 5) -> str | None:
    """A letter read off the answer's tokens, or None."""
    choices = string.ascii_uppercase[:num_choice]
    if "Failed to obtain answer via API" in answer:
        return None
    splits = [x.strip() for x in answer.split()]

    def count(prefix: str = "", suffix: str = "") -> int:
        return sum(prefix + c + suffix in splits for c in choices)

    if count() == 1 and not ("A" in splits and len(splits) > 3):
        return next(c for c in choices if c in splits)
    for prefix, suffix in _DECORATIONS:
        if count(prefix, suffix) == 1:
            return next(c for c in choices if prefix + c + suffix in splits)
    return None


def can_infer_text(answer: str, choices: dict[str, str]) -> str | None:
    """The letter of the only option whose (lowercased) text occurs in the lowercased answer, or None."""
    answer = answer.lower()
    cands = [k for k, v in choices.items() if str(v).lower() in answer]
    return cands[0] if len(cands) == 1 else None


PATHS = ("option", "text", "mcq_extract", "unparsed")


def infer_letter(answer: str, choices: dict[str, str]) -> tuple[str | None, str]:
    """(letter or None, the path that decided it; see the module doc)."""
    letter = can_infer_option(answer)
    if letter:
        return letter, "option"
    letter = can_infer_text(answer, choices)
    if letter:
        return letter, "text"
    letter = extract_mcq_answer(answer, list(choices))
    return (letter, "mcq_extract") if letter else (None, "unparsed")


def _int_id(answer: dict[str, Any]) -> int:
    try:
        return int(answer["question_id"])
    except (TypeError, ValueError):
        raise SeaError(f"mmbench: question_id {answer['question_id']!r} is not a TSV index") from None


def score_mmbench(
    answers: Sequence[dict[str, Any]],
    annotations: str | Path,
    questions: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Result:
    """Circular and vanilla accuracy (percent), per category and l2-category in `details`.
    `annotations` is the TSV with the `answer` column (the question file itself)."""
    path = require_path(annotations or questions, "mmbench", "TSV with answers (mmbench_dev_*.tsv)")
    rows = sorted(read_mmbench_tsv(path), key=lambda r: r["index"])
    if any(is_none(r.get("answer")) for r in rows):
        raise SeaError(f"mmbench: {path} has rows without an 'answer': it cannot score (a test split?)")
    if any("round_id" in a and a["round_id"] not in (0, None) for a in answers):
        raise SeaError(
            "mmbench: answers from `--all-rounds` (round_id > 0) are not supported; answer each TSV row once"
        )
    matched, missing = match_answers(
        answers, [r["index"] for r in rows], "mmbench", key=_int_id,
        allow_missing=allow_missing, what=path.name,
    )  # fmt: skip
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["index"] % CIRCULAR_OFFSET, []).append(r)
    preds: dict[int, str | None] = {}
    paths = dict.fromkeys(PATHS, 0)
    for r in rows:
        a = matched.get(r["index"])
        if a is None:
            preds[r["index"]] = None
            continue
        choices = {c: str(r[c]) for c in ALL_OPTIONS if not is_none(r.get(c))}
        preds[r["index"]], path = infer_letter(str(a["text"]), choices)
        paths[path] += 1
    main = [r for r in rows if r["index"] < CIRCULAR_OFFSET]
    hits, vanilla = [], []
    for r in main:
        sub = groups[r["index"]]
        hits.append(int(all(preds[s["index"]] is not None and preds[s["index"]] == s["answer"] for s in sub)))
        vanilla.append(int(preds[r["index"]] == r["answer"]))
    details: dict[str, Any] = {}
    for col in ("category", "l2-category"):
        per: dict[str, list[int]] = {}
        for r, h in zip(main, hits, strict=True):
            if col in r:
                per.setdefault(str(r[col]), []).append(h)
        if per:
            details[col] = {k: pct(sum(v), len(v)) for k, v in sorted(per.items())}
    counts = {
        "questions": len(main),
        "rows": len(rows),
        "answered": len(matched),
        "missing": len(missing),
        "orphan_copies": len(set(groups) - {r["index"] for r in main}),
    } | {f"path/{k}": v for k, v in paths.items()}
    metrics = {"accuracy": pct(sum(hits), len(hits)), "vanilla_accuracy": pct(sum(vanilla), len(vanilla))}
    out = result("mmbench", metrics, counts, details=details)
    units = [(r["index"], [h]) for r, h in zip(main, hits, strict=True)]
    out["outcomes"] = unit_outcomes("mean", "question with its circular copies", ["hit"], {"all": units})
    out["chance"] = mmbench_chance([groups[r["index"]] for r in main])
    return out


def mmbench_chance(groups: Sequence[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """`chance` of circular accuracy: the better of the best constant letter (right only where every copy
    has that answer) and a uniform random letter per copy (expected: the product of 1 / options)."""
    if not groups:
        return {"metrics": {}, "rule": "no questions"}
    constant = max(sum(all(r["answer"] == c for r in g) for g in groups) for c in ALL_OPTIONS)
    random = 0.0
    for g in groups:
        p = 1.0
        for r in g:
            p /= max(1, len(row_options(r)))
        random += p
    best = max(constant, random) / len(groups) * 100
    return {
        "metrics": {"accuracy": best},
        "rule": "the better of one constant letter and a random letter per copy",
    }
