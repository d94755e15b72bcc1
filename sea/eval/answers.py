"""LLaVA answer files: reading, writing, and matching answers to annotations with clear errors.

An answer file is JSON lines, one object per question, as LLaVA's runners write them:
`{"question_id", "prompt", "text", "answer_id", "model_id", "metadata": {}}` (MMBench adds `round_id`,
`options`, `option_char`). Scorers need only `question_id` and `text` (plus `prompt` for MME, TextVQA
and ScienceQA, whose reference scripts read it).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.utils.io import write_jsonl

# shortuuid's default alphabet (57 characters, no look-alikes) and length.
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ANSWER_NS = uuid.UUID("6f1c3f7e-5b7a-4d0e-9a56-2f0c1e9b7d11")
MAX_LISTED = 20


def answer_id(*parts: Any) -> str:
    """A 22-character shortuuid-style id, deterministic in `parts` (LLaVA draws a random one)."""
    n = uuid.uuid5(_ANSWER_NS, "\x1f".join(str(p) for p in parts)).int
    out = []
    for _ in range(22):
        n, r = divmod(n, len(_ALPHABET))
        out.append(_ALPHABET[r])
    return "".join(out)


def make_answer(
    question_id: Any,
    prompt: str,
    text: str,
    model_id: str,
    aid: str,
    *,
    round_id: int | None = None,
    options: list[str] | None = None,
    option_char: list[str] | None = None,
) -> dict[str, Any]:
    """One answer record, keys in the order LLaVA's runners write them (`model_vqa_mmbench` adds
    `round_id`, `options`, `option_char`)."""
    record: dict[str, Any] = {"question_id": question_id}
    if round_id is not None:
        record["round_id"] = round_id
    record["prompt"] = prompt
    record["text"] = text
    if options is not None:
        record["options"] = options
        record["option_char"] = option_char if option_char is not None else []
    record.update(answer_id=aid, model_id=model_id, metadata={})
    return record


def write_answers(path: str | Path, answers: Iterable[dict]) -> Path:
    """JSON lines, one answer per line (LLaVA writes `json.dumps(...)` with ASCII escapes; so do we)."""
    return write_jsonl(path, answers, ensure_ascii=True)


def read_answers(path: str | Path) -> list[dict[str, Any]]:
    """The answers of a JSON-lines file; SeaError naming the line for bad JSON or a record without
    `question_id` or a string `text`."""
    path = Path(path)
    if not path.is_file():
        raise SeaError(f"answer file not found: {path}")
    answers: list[dict[str, Any]] = []
    with path.open("r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SeaError(f"{path}:{lineno}: invalid JSON ({e.msg}, column {e.colno})") from e
            if not isinstance(row, dict) or "question_id" not in row:
                raise SeaError(f"{path}:{lineno}: an answer must be a JSON object with a 'question_id'")
            if not isinstance(row.get("text"), str):
                raise SeaError(f"{path}:{lineno}: answer {row['question_id']!r} has no string 'text'")
            answers.append(row)
    return answers


def listing(ids: Sequence[Any], limit: int = MAX_LISTED) -> str:
    """`'a', 'b', ... (first 20 of 31)`."""
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f", ... (first {limit} of {len(ids)})" if len(ids) > limit else "")


def match_answers(
    answers: Sequence[dict[str, Any]],
    expected: Iterable[Hashable],
    benchmark: str,
    key: Callable[[dict[str, Any]], Hashable] = lambda a: a["question_id"],
    *,
    allow_missing: bool = False,
    allow_duplicates: bool = False,
    what: str = "the annotations",
) -> tuple[dict[Hashable, dict[str, Any]], list[Hashable]]:
    """Map each expected key to its answer; return (matched, missing keys in `expected` order).

    SeaError listing the offending keys for: answers whose key is not expected ("unknown"), keys answered
    more than once (unless `allow_duplicates`: the last answer wins, as a dict in the reference scripts),
    and expected keys without an answer (unless `allow_missing`).
    """
    expected = list(expected)
    known = set(expected)
    keys = [key(a) for a in answers]
    unknown = [k for k in dict.fromkeys(keys) if k not in known]
    if unknown:
        raise SeaError(
            f"{benchmark}: {len(unknown)} answer(s) match nothing in {what} "
            f"(wrong annotation file, or answers of another benchmark?): {listing(unknown)}"
        )
    if not allow_duplicates:
        dup = [k for k, c in Counter(keys).items() if c > 1]
        if dup:
            raise SeaError(f"{benchmark}: {len(dup)} question(s) answered more than once: {listing(dup)}")
    matched = dict(zip(keys, answers, strict=True))
    missing = [k for k in expected if k not in matched]
    check_missing(benchmark, missing, len(expected), allow_missing, what)
    return matched, missing


def check_missing(
    benchmark: str, missing: Sequence[Any], total: int, allow_missing: bool, what: str = "the annotations"
) -> None:
    """SeaError naming how many of `total` questions have no answer, unless `allow_missing` or none is
    missing: a partial answer file never scores silently (every scorer and the `evaluate` stage)."""
    if missing and not allow_missing:
        raise SeaError(
            f"{benchmark}: {len(missing)} of {total} question(s) in {what} have no answer "
            f"(pass allow_missing / --allow-missing to score them as documented): {listing(missing)}"
        )
