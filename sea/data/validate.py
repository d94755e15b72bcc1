"""Readers and validators for LLaVA's dataset formats.

Formats (llava-reference.md sections 2 and 4):

- conversation JSON, the shape of LCS-558K (`schema="pretrain"`) and mix665K (`schema="instruct"`):
  a JSON list of `{"id", "image"?, "conversations": [{"from", "value"}, ...]}`, or the same samples
  as JSON lines (`.jsonl` / `.ndjson`, one sample a line) so that a broken sample has a line number;
- eval question files (`.jsonl`): `{"question_id", "image", "text", "category"?}`;
- MMBench TSV: columns `index, question, A, B, answer, image` (base64), optional `C, D, hint, category`.

Every problem is a `Problem(file, where, kind, reason)`; `where` is `line N` (JSON lines and TSV, with
the sample id in brackets when known), `sample id X` (JSON lists) or `index N` (position in a JSON list
when the id is missing). `on_error="fail"` raises `DatasetError` at the first problem;
`on_error="skip"` drops the sample, counts it under its kind and keeps going. Problems with the file
itself (missing, unparsable, wrong top-level type, TSV header without a required column) raise in both
modes: there is nothing left to skip to.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sea.data.llava import (
    IMAGE_TOKEN,
    DatasetError,
    Problem,
    Record,
    _file_error,
    _require_file,
    iter_json_records,
    iter_tsv_rows,
    tsv_header,
)
from sea.errors import SeaError

log = logging.getLogger(__name__)

# Characters of a conversation's turns above which a sample is flagged `too_long` (a 2048-token context
# holds roughly 10k characters); `data.validation.max_chars` overrides it.
MAX_SAMPLE_CHARS = 100_000

# Problem kinds. Each dropped sample is counted under exactly one kind (its first problem).
KINDS: tuple[str, ...] = (
    "malformed_json",  # a JSON line (or the whole JSON file) does not parse
    "missing_key",  # a required key / column / value is absent
    "bad_value",  # a value of the wrong type or outside its domain (e.g. MMBench answer not an option)
    "bad_turns",  # conversations empty, not human/gpt alternating from human, wrong turn count
    "image_token_missing",  # image sample without exactly one <image> in its first human turn
    "image_token_unexpected",  # <image> in a text-only sample or in a later turn
    "image_missing",  # image file not found under the image folder
    "image_unreadable",  # PIL cannot open / verify it (or bad base64 in MMBench)
    "duplicate_id",  # a sample id seen before in the same file
    "too_long",  # more characters than data.validation.max_chars
    "image_outside_folder",  # an absolute image path, or one leaving the image folder with `..`
)

# `answer` is checked where the column exists (a test split has none: its server holds the answers).
MMBENCH_REQUIRED = ("index", "question", "A", "B", "image")
Schema = Literal["pretrain", "instruct"]
OnError = Literal["fail", "skip"]


@dataclass
class ValidationResult:
    """What a validator kept and dropped.

    `samples` are the kept records as read (MMBench rows without their base64 image); `rows` one
    lightweight manifest row per kept sample; `skipped` the number of dropped samples per kind (every
    kind present, 0 when none); `problems` the first `max_problems` problems, in file order.
    """

    file: str
    format: str
    total: int = 0
    samples: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    problems: list[Problem] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return len(self.rows)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self, max_problems: int = 20) -> dict:
        """A JSON-ready report: counts, skips by kind and the first problems as strings."""
        return {
            "file": self.file,
            "format": self.format,
            "total": self.total,
            "kept": self.kept,
            "skipped": self.n_skipped,
            "skipped_by_kind": dict(self.skipped),
            "problems": [str(p) for p in self.problems[:max_problems]],
        }

    def metrics(self, prefix: str) -> dict[str, int]:
        """Flat metrics `<prefix>/total|kept|skipped|skipped/<kind>` (every kind present)."""
        out = {
            f"{prefix}/total": self.total,
            f"{prefix}/kept": self.kept,
            f"{prefix}/skipped": self.n_skipped,
        }
        out.update({f"{prefix}/skipped/{kind}": n for kind, n in self.skipped.items()})
        return out


# ------------------------------------------------------------------------------------------ images


class ImageChecker:
    """Existence (and, with `check_images`, PIL readability) of image files under a folder.

    Existence is looked up in a cached listing of each folder, so 558K images cost one `listdir` per
    folder instead of one `stat` per file.
    """

    def __init__(self, folder: str | Path | None, check_images: bool):
        self.folder = None if folder is None else Path(folder)
        self.check_images = check_images
        self._listing: dict[str, frozenset[str]] = {}

    def _names(self, directory: str) -> frozenset[str]:
        names = self._listing.get(directory)
        if names is None:
            try:
                names = frozenset(os.listdir(directory or "."))
            except OSError:
                names = frozenset()
            self._listing[directory] = names
        return names

    def check(self, relative: str) -> tuple[str, str] | None:
        """`(kind, reason)` when the image is missing or unreadable, else None."""
        inside = os.path.normpath(relative)
        if os.path.isabs(inside) or inside == ".." or inside.startswith(".." + os.sep):
            return "image_outside_folder", f"image path {relative!r} leaves the image folder"
        if self.folder is None:
            return None
        path = os.path.normpath(os.path.join(self.folder, relative))
        directory, name = os.path.split(path)
        if name not in self._names(directory):
            return "image_missing", f"image file not found: {path}"
        if self.check_images:
            return verify_image(path)
        return None


def verify_image(source: str | Path | io.BytesIO) -> tuple[str, str] | None:
    """`("image_unreadable", reason)` when PIL cannot open and verify the image, else None."""
    from PIL import Image

    try:
        with Image.open(source) as im:
            im.verify()
    except Exception as e:  # PIL raises many types (UnidentifiedImageError, SyntaxError, OSError, ...)
        name = source if isinstance(source, (str, Path)) else "image"
        return "image_unreadable", f"cannot read {name}: {type(e).__name__}: {e}"
    return None


# -------------------------------------------------------------------------------------- collection


class _Collector:
    """Accumulates a `ValidationResult`; raises at the first problem in fail mode."""

    def __init__(self, path: Path, fmt: str, on_error: str, max_problems: int):
        if on_error not in ("fail", "skip"):
            raise SeaError(f"data.validation.on_error must be 'fail' or 'skip', got {on_error!r}")
        self.path = path
        self.fail = on_error == "fail"
        self.max_problems = max_problems
        self.result = ValidationResult(file=str(path), format=fmt)

    def reject(self, where: str, kind: str, reason: str) -> None:
        problem = Problem(str(self.path), where, kind, reason)
        if self.fail:
            raise DatasetError(problem)
        self.result.skipped[kind] += 1
        if len(self.result.problems) < self.max_problems:
            self.result.problems.append(problem)

    def parsed(self, records: Iterable[Record], unparsed: str = "malformed_json") -> Iterator[Record]:
        """The records that parse, each counted; one that does not is an `unparsed` problem."""
        for record in _progress(records, self.path):
            self.result.total += 1
            if record.error is not None:
                self.reject(record.where(), unparsed, record.error)
                continue
            yield record

    def keep(self, sample: dict, row: dict) -> None:
        self.result.samples.append(sample)
        self.result.rows.append(row)

    def finish(self) -> ValidationResult:
        result = self.result
        if result.total == 0:
            raise DatasetError(Problem(str(self.path), "whole file", "empty", "the file holds no samples"))
        if result.n_skipped:
            by_kind = ", ".join(f"{k}={n}" for k, n in result.skipped.items() if n)
            log.warning(
                "%s: kept %d of %d samples, skipped %d (%s)",
                result.file,
                result.kept,
                result.total,
                result.n_skipped,
                by_kind,
            )
            for problem in result.problems[:5]:
                log.warning("  %s", problem)
        else:
            log.info("%s: all %d samples valid", result.file, result.total)
        return result


def _progress(records: Iterable[Record], path: Path) -> Iterator[Record]:
    from tqdm.auto import tqdm

    return iter(tqdm(records, desc=f"validate {path.name}", unit=" samples", disable=None, mininterval=1.0))


def _id_ok(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != ""


def _image_field(sample: dict) -> tuple[str, str] | None:
    image = sample.get("image")
    if not isinstance(image, str) or not image.strip():
        return "bad_value", f"'image' must be a non-empty relative path, got {image!r}"
    return None


# ---------------------------------------------------------------------------------- conversations


def check_conversation(
    sample: Any, schema: Schema = "instruct", max_chars: int = MAX_SAMPLE_CHARS
) -> tuple[str, str] | None:
    """`(kind, reason)` for the first structural problem of one LLaVA conversation sample, else None.

    Checks keys, human/gpt alternation starting with human, the turn count (exactly 2 for pretrain, as
    LLaVA's `preprocess_plain` asserts; even for instruct) and the `<image>` token: exactly one, in the
    first human turn, for image samples; none for text-only samples. Files are not checked here.
    """
    if not isinstance(sample, dict):
        return "bad_value", f"expected a JSON object, got {type(sample).__name__}"
    for key in ("id", "conversations"):
        if key not in sample:
            return "missing_key", f"missing key '{key}'"
    if not _id_ok(sample["id"]):
        return "bad_value", f"'id' must be a non-empty string or integer, got {sample['id']!r}"
    has_image = "image" in sample
    if schema == "pretrain" and not has_image:
        return "missing_key", "missing key 'image' (every pretrain sample has an image)"
    if has_image and (problem := _image_field(sample)):
        return problem
    turns = sample["conversations"]
    if not isinstance(turns, list):
        return "bad_turns", f"'conversations' must be a list, got {type(turns).__name__}"
    if not turns:
        return "bad_turns", "conversations are empty"
    for t, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            return "bad_turns", f"conversations turn {t} is not an object"
        for key in ("from", "value"):
            if key not in turn:
                return "missing_key", f"missing key '{key}' in conversations turn {t}"
        if not isinstance(turn["value"], str):
            return (
                "bad_value",
                f"conversations turn {t}: 'value' must be a string, got {type(turn['value']).__name__}",
            )
        expected = "human" if t % 2 else "gpt"
        if turn["from"] != expected:
            return (
                "bad_turns",
                f"conversations do not alternate human/gpt (turn {t} is from {turn['from']!r})",
            )
    length = sum(len(turn["value"]) for turn in turns)
    if length > max_chars:
        return (
            "too_long",
            f"{length} characters in the conversation (limit {max_chars}: data.validation.max_chars)",
        )
    n = len(turns)
    if schema == "pretrain" and n != 2:
        return "bad_turns", f"pretrain samples need exactly 2 turns (human, gpt), got {n}"
    if n % 2:
        return "bad_turns", f"odd number of turns ({n}): the last human turn has no gpt answer"
    counts = [turn["value"].count(IMAGE_TOKEN) for turn in turns]
    if has_image:
        if counts[0] == 0:
            return "image_token_missing", f"image sample has no '{IMAGE_TOKEN}' in the first human turn"
        if counts[0] > 1:
            return (
                "image_token_missing",
                f"'{IMAGE_TOKEN}' appears {counts[0]} times in the first human turn (expected once)",
            )
        later = next((t for t, c in enumerate(counts[1:], start=2) if c), None)
        if later is not None:
            return (
                "image_token_unexpected",
                f"'{IMAGE_TOKEN}' in turn {later} (only the first human turn may hold it)",
            )
    else:
        first = next((t for t, c in enumerate(counts, start=1) if c), None)
        if first is not None:
            return (
                "image_token_unexpected",
                f"text-only sample (no 'image' key) has '{IMAGE_TOKEN}' in turn {first}",
            )
    return None


def validate_conversations(
    path: str | Path,
    image_folder: str | Path | None,
    *,
    schema: Schema = "instruct",
    on_error: OnError = "fail",
    check_images: bool = False,
    unique_ids: bool = True,
    max_problems: int = 1000,
    max_chars: int = MAX_SAMPLE_CHARS,
) -> ValidationResult:
    """Validate a LLaVA conversation file (558K pretrain or mix665K instruct shape).

    Manifest rows: `{"id", "image" (relative path or None), "n_turns", "index", "line"}` (`line` is
    None for a JSON list). `image_folder=None` skips the file checks.
    """
    path = Path(path)
    collect = _Collector(path, f"llava_{schema}", on_error, max_problems)
    images = ImageChecker(image_folder, check_images)
    seen: dict[str, int] = {}
    for record in collect.parsed(iter_json_records(path)):
        sample = record.value
        sample_id = sample.get("id") if isinstance(sample, dict) and _id_ok(sample.get("id")) else None
        where = record.where(sample_id)
        if problem := check_conversation(sample, schema, max_chars):
            collect.reject(where, *problem)
            continue
        if unique_ids:
            key = str(sample_id)
            if key in seen:
                collect.reject(
                    where,
                    "duplicate_id",
                    f"duplicate id {sample_id!r} (first seen at {_position(seen[key], record)})",
                )
                continue
        image = sample.get("image")
        if image is not None and (problem := images.check(image)):
            collect.reject(where, *problem)
            continue
        if unique_ids:
            seen[key] = _place(record)
        collect.keep(
            sample,
            {
                "id": sample_id,
                "image": image,
                "n_turns": len(sample["conversations"]),
                "index": record.index,
                "line": record.line,
            },
        )
    return collect.finish()


def _place(record: Record) -> int:
    """Where a record stands: its line (JSON lines), else its index (JSON list)."""
    return record.line if record.line is not None else record.index


def _position(first: int, record: Record) -> str:
    return f"line {first}" if record.line is not None else f"index {first}"


# ---------------------------------------------------------------------------------- eval questions


def check_question(sample: Any) -> tuple[str, str] | None:
    """`(kind, reason)` for the first problem of one eval question `{"question_id","image","text"}`."""
    if not isinstance(sample, dict):
        return "bad_value", f"expected a JSON object, got {type(sample).__name__}"
    for key in ("question_id", "image", "text"):
        if key not in sample:
            return "missing_key", f"missing key '{key}'"
    if not _id_ok(sample["question_id"]):
        return (
            "bad_value",
            f"'question_id' must be a non-empty string or integer, got {sample['question_id']!r}",
        )
    if problem := _image_field(sample):
        return problem
    if not isinstance(sample["text"], str) or not sample["text"].strip():
        return "bad_value", f"'text' must be a non-empty string, got {sample['text']!r}"
    if IMAGE_TOKEN in sample["text"]:
        return "image_token_unexpected", f"'{IMAGE_TOKEN}' in 'text' (the runner prepends it)"
    if "category" in sample and not isinstance(sample["category"], str):
        return "bad_value", f"'category' must be a string, got {sample['category']!r}"
    return None


def validate_questions(
    path: str | Path,
    image_folder: str | Path | None,
    *,
    on_error: OnError = "fail",
    check_images: bool = False,
    unique_ids: bool = False,
    max_problems: int = 1000,
) -> ValidationResult:
    """Validate an eval question file (`.jsonl`: `{"question_id","image","text","category"?}`).

    A question repeated with the same `question_id` and `text` is always a `duplicate_id`;
    `unique_ids=True` also rejects a repeated `question_id` with another text. LLaVA's own files
    repeat ids by design (MME: `category/file`, two questions per image; TextVQA: the image id), hence
    the default. Manifest rows: `{"question_id", "image", "category", "index", "line"}`.
    """
    path = Path(path)
    collect = _Collector(path, "question_jsonl", on_error, max_problems)
    images = ImageChecker(image_folder, check_images)
    seen: dict[Any, int] = {}
    for record in collect.parsed(iter_json_records(path)):
        sample = record.value
        qid = (
            sample.get("question_id")
            if isinstance(sample, dict) and _id_ok(sample.get("question_id"))
            else None
        )
        where = record.where(qid, "question_id")
        if problem := check_question(sample):
            collect.reject(where, *problem)
            continue
        key = str(qid) if unique_ids else (str(qid), sample["text"])
        if key in seen:
            same = "" if unique_ids else " with the same text"
            collect.reject(
                where,
                "duplicate_id",
                f"duplicate question_id {qid!r}{same} (first seen at {_position(seen[key], record)})",
            )
            continue
        if problem := images.check(sample["image"]):
            collect.reject(where, *problem)
            continue
        seen[key] = _place(record)
        collect.keep(
            sample,
            {
                "question_id": qid,
                "image": sample["image"],
                "category": sample.get("category"),
                "index": record.index,
                "line": record.line,
            },
        )
    return collect.finish()


# ------------------------------------------------------------------------------------------ MMBench


def _blank(value: str | None) -> bool:
    return value is None or value.strip() == "" or value.strip().lower() == "nan"


def _is_image_ref(value: str) -> bool:
    """VLMEvalKit stores a repeated image as the `index` of the row that holds it (<= 64 chars)."""
    return len(value) <= 64 and value.strip().lstrip("-").isdigit()


def check_mmbench_row(
    row: dict[str, str], option_letters: list[str], check_images: bool
) -> tuple[str, str] | None:
    """`(kind, reason)` for the first problem of one MMBench row (a dict of column -> text)."""
    for key in MMBENCH_REQUIRED:
        if _blank(row.get(key)):
            return "missing_key", f"empty value for required column '{key}'"
    try:
        int(row["index"].strip())
    except ValueError:
        return "bad_value", f"'index' must be an integer, got {row['index']!r}"
    options = [c for c in option_letters if not _blank(row.get(c))]
    if "answer" in row:
        if _blank(row["answer"]):
            return "missing_key", "empty value for required column 'answer'"
        answer = row["answer"].strip()
        if answer not in options:
            return "bad_value", f"answer {answer!r} is not one of the options {', '.join(options)}"
    image = row["image"].strip()
    if check_images and not _is_image_ref(image):
        try:
            data = base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError) as e:
            return "image_unreadable", f"'image' is not valid base64: {e}"
        return verify_image(io.BytesIO(data))
    return None


def validate_mmbench(
    path: str | Path,
    *,
    on_error: OnError = "fail",
    check_images: bool = False,
    max_problems: int = 1000,
) -> ValidationResult:
    """Validate an MMBench TSV (LLaVA's `mmbench_dev_20230712.tsv` format; also VLMEvalKit's image refs).

    Manifest rows: `{"index", "category", "answer", "options" (letters), "line"}`; kept samples are the
    rows without the base64 `image`.
    """
    path = Path(path)
    collect = _Collector(path, "mmbench_tsv", on_error, max_problems)
    header = tsv_header(path)
    for key in MMBENCH_REQUIRED:
        if key not in header:
            raise _file_error(path, "line 1 (header)", "missing_key", f"missing required column '{key}'")
    letters = [h for h in header if len(h) == 1 and "A" <= h <= "Z"]
    seen: dict[str, int] = {}
    refs: list[tuple[int, str, str]] = []  # (position in rows, referenced index, where)
    for record in collect.parsed(iter_tsv_rows(path), "bad_value"):
        row = record.value
        index = None if _blank(row.get("index")) else row["index"].strip()
        where = record.where(index, "index")
        if problem := check_mmbench_row(row, letters, check_images):
            collect.reject(where, *problem)
            continue
        if index in seen:
            collect.reject(
                where, "duplicate_id", f"duplicate index {index} (first seen at line {seen[index]})"
            )
            continue
        seen[index] = record.line
        if _is_image_ref(row["image"]):
            refs.append((len(collect.result.rows), row["image"].strip(), where))
        options = "".join(c for c in letters if not _blank(row.get(c)))
        sample = {k: v for k, v in row.items() if k != "image"}
        collect.keep(
            sample,
            {
                "index": int(index),
                "category": row.get("category") or None,
                "answer": row["answer"].strip() if "answer" in row else None,
                "options": options,
                "line": record.line,
            },
        )
    _drop_dangling_refs(collect, refs, seen)
    return collect.finish()


def _drop_dangling_refs(collect: _Collector, refs: list[tuple[int, str, str]], seen: dict[str, int]) -> None:
    """Image refs must name a kept row that holds a real image."""
    ref_rows = {pos for pos, _, _ in refs}
    index_of = {str(row["index"]): pos for pos, row in enumerate(collect.result.rows)}
    bad: set[int] = set()
    for pos, target, where in refs:
        target_pos = index_of.get(str(int(target)))
        if target_pos is None or target_pos in ref_rows:
            collect.reject(where, "image_missing", f"'image' refers to index {target}, which holds no image")
            bad.add(pos)
    if bad:
        result = collect.result
        result.rows = [r for i, r in enumerate(result.rows) if i not in bad]
        result.samples = [s for i, s in enumerate(result.samples) if i not in bad]


# ------------------------------------------------------------------------------------------ eval sets


def validate_vqa_questions(
    path: str | Path,
    image_folder: str | Path | None,
    *,
    on_error: OnError = "fail",
    check_images: bool = False,
    max_problems: int = 1000,
) -> ValidationResult:
    """Validate the official VQA questions JSON (`{"data_subtype", "questions": [{"question_id",
    "image_id", "question"}]}`); images are `COCO_<data_subtype>_<image_id:012d>.jpg`. Manifest rows:
    `{"question_id", "image", "index", "line": None}`."""
    path = Path(path)
    collect = _Collector(path, "vqa_questions", on_error, max_problems)
    _require_file(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetError(Problem(str(path), f"line {e.lineno}", "malformed_json", e.msg)) from e
    rows = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise DatasetError(Problem(str(path), "top level", "missing_key", "no 'questions' list"))
    subtype = str(data.get("data_subtype") or "val2014")
    images = ImageChecker(image_folder, check_images)
    for index, q in enumerate(rows):
        collect.result.total += 1
        where = f"index {index}"
        if not isinstance(q, dict) or any(k not in q for k in ("question_id", "image_id", "question")):
            collect.reject(where, "missing_key", "a question needs 'question_id', 'image_id' and 'question'")
            continue
        if not isinstance(q["image_id"], int):
            collect.reject(where, "bad_value", f"'image_id' must be an integer, got {q['image_id']!r}")
            continue
        image = f"COCO_{subtype}_{q['image_id']:012d}.jpg"
        if problem := images.check(image):
            collect.reject(where, *problem)
            continue
        collect.keep(q, {"question_id": q["question_id"], "image": image, "index": index, "line": None})
    return collect.finish()


def validate_eval_set(
    spec: dict,
    *,
    on_error: OnError = "fail",
    check_images: bool = False,
    unique_ids: bool = False,
    max_problems: int = 1000,
) -> ValidationResult:
    """Validate one `data.eval_sets.<name>` entry (`format`: `question_jsonl`, `mmbench_tsv`,
    `llava_json` (ScienceQA's conversation list) or `vqa_questions`; an optional `unique_ids` in the entry
    overrides the argument)."""
    fmt = spec.get("format")
    if fmt == "question_jsonl":
        return validate_questions(
            spec["questions"],
            spec.get("image_folder"),
            on_error=on_error,
            check_images=check_images,
            unique_ids=spec.get("unique_ids", unique_ids),
            max_problems=max_problems,
        )
    if fmt == "mmbench_tsv":
        return validate_mmbench(
            spec["questions"], on_error=on_error, check_images=check_images, max_problems=max_problems
        )
    if fmt == "llava_json":
        return validate_conversations(
            spec["questions"], spec.get("image_folder"), schema="instruct", on_error=on_error,
            check_images=check_images, unique_ids=True, max_problems=max_problems,
        )  # fmt: skip
    if fmt == "vqa_questions":
        return validate_vqa_questions(
            spec["questions"], spec.get("image_folder"), on_error=on_error, check_images=check_images,
            max_problems=max_problems,
        )  # fmt: skip
    raise ValueError(
        f"unknown eval set format {fmt!r}; known: question_jsonl, mmbench_tsv, llava_json, vqa_questions"
    )
