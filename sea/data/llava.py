"""LLaVA's data conventions, in one place so that training and evaluation read and preprocess alike.

- token ids and the image placeholder (LLaVA's `llava/constants.py`);
- images: CLIP's mean colour, and the square padding of `image_aspect_ratio=pad` (LLaVA's
  `expand2square` with `tuple(int(x * 255) for x in image_mean)`, in training and evaluation alike);
- images: opening one (`open_image`) and the tower's pixels (`preprocess_image`);
- readers of LLaVA's files: conversation JSON / JSON lines, TSV (MMBench), `prepare`'s manifests and the
  samples they kept (`load_samples`). A
  problem with a file is a `DatasetError` naming the file and the line (`Problem`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sea.errors import SeaError

IGNORE_INDEX = -100  # label value the loss ignores
IMAGE_TOKEN_INDEX = -200  # the single input id that stands for an image placeholder
IMAGE_TOKEN = "<image>"  # the placeholder in conversation text

# CLIP's (and LLaVA's image processor's) per-channel mean, the default of a tower without its own.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


# ------------------------------------------------------------------------------------------ images


def image_mean(preprocess_cfg: dict[str, Any]) -> tuple[float, ...]:
    """A vision tower's per-channel mean (its preprocessing config), CLIP's when it names none."""
    return tuple(preprocess_cfg.get("mean") or CLIP_MEAN)


def pad_fill(mean: Sequence[float]) -> tuple[int, ...]:
    """The padding colour (0-255 RGB) of a tower with mean `mean`: LLaVA's `int(x * 255)`."""
    return tuple(int(x * 255) for x in mean)


def open_image(path: str | Path, sample_id: Any = None) -> Any:
    """The image file at `path` as RGB PIL; a `SeaError` naming the sample (when given) and the file."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as err:
        who = f"sample {sample_id!r}: " if sample_id is not None else ""
        raise SeaError(f"{who}cannot read image {path}: {err}") from err


def preprocess_image(tower: Any, image: Any, image_aspect_ratio: str = "pad") -> Any:
    """Pixels for a vision tower from an RGB PIL image: padded to a square with the tower's mean colour
    first when `image_aspect_ratio` is 'pad' (LLaVA's), then the tower's own preprocessing."""
    if image_aspect_ratio == "pad":
        image = expand_to_square(image, pad_fill(image_mean(tower.preprocess_cfg)))
    elif image_aspect_ratio not in ("none", "crop", None):
        raise SeaError(f"image_aspect_ratio must be 'pad' or 'none', got {image_aspect_ratio!r}")
    return tower.preprocess(image)


def expand_to_square(image: Any, fill: tuple[int, ...]) -> Any:
    """LLaVA's `expand2square`: paste a PIL image onto a square canvas of `fill`, centred."""
    from PIL import Image

    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


# ----------------------------------------------------------------------------------------- readers


@dataclass(frozen=True)
class Problem:
    """One dataset problem: which file, where in it, what kind, and a readable reason."""

    file: str
    where: str
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.reason}"


class DatasetError(SeaError, ValueError):
    """A dataset problem in fail-fast mode (or one that makes the whole file unusable)."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class Record:
    """One raw record from a file: its position, its line (JSON lines / TSV) and the parsed value.

    `error` is set (and `value` is None) when the record does not parse.
    """

    index: int
    line: int | None
    value: Any
    error: str | None = None

    def where(self, sample_id: Any = None, id_name: str = "sample id") -> str:
        if self.line is not None:
            return f"line {self.line}" + (f" ({id_name} {sample_id})" if sample_id is not None else "")
        return f"{id_name} {sample_id}" if sample_id is not None else f"index {self.index}"


def _file_error(path: Path, where: str, kind: str, reason: str) -> DatasetError:
    return DatasetError(Problem(str(path), where, kind, reason))


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise _file_error(path, "file", "missing_key", f"file not found: {path}")


def iter_json_records(path: str | Path) -> Iterator[Record]:
    """The records of a JSON list file, or of a JSON-lines file (`.jsonl` / `.ndjson`).

    A JSON line that does not parse comes back as a `Record` with `error` set. A JSON list file that
    does not parse, or is not a list, raises `DatasetError` naming the line and column.
    """
    path = Path(path)
    _require_file(path)
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        yield from _iter_json_lines(path)
        return
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as e:
        hint = (
            " (is this a JSON-lines file? name it .jsonl)" if e.msg == "Extra data" and e.colno == 1 else ""
        )
        raise _file_error(
            path, f"line {e.lineno} column {e.colno}", "malformed_json", f"invalid JSON: {e.msg}{hint}"
        ) from e
    except UnicodeDecodeError as e:
        raise _file_error(path, f"byte {e.start}", "malformed_json", f"not UTF-8 text: {e.reason}") from e
    if not isinstance(data, list):
        raise _file_error(
            path, "file", "bad_value", f"expected a JSON list of samples, got a JSON {type(data).__name__}"
        )
    for index, value in enumerate(data):
        yield Record(index, None, value)


def _iter_json_lines(path: Path) -> Iterator[Record]:
    index = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                yield Record(index, lineno, json.loads(raw))
            except json.JSONDecodeError as e:
                yield Record(index, lineno, None, f"invalid JSON: {e.msg} (column {e.colno})")
            except UnicodeDecodeError as e:
                yield Record(index, lineno, None, f"not UTF-8 text: {e.reason}")
            index += 1


def iter_tsv_rows(path: str | Path) -> Iterator[Record]:
    """The data rows of a TSV file with a header, as dicts; `line` is the row's first line (header = 1).

    A row with more fields than the header comes back with `error` set; missing trailing fields are
    empty strings (as pandas reads them: missing).
    """
    path = Path(path)
    _require_file(path)
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, 2**31 - 1))  # base64 images exceed the 128 KiB default
    try:
        with path.open("r", encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader, None)
            if header is None:
                raise _file_error(path, "line 1", "missing_key", "empty TSV file: no header row")
            header = [h.strip() for h in header]
            last_line = reader.line_num
            for index, fields in enumerate(reader):
                start, last_line = last_line + 1, reader.line_num
                if not any(x.strip() for x in fields):
                    continue
                if len(fields) > len(header):
                    yield Record(
                        index, start, None, f"row has {len(fields)} fields, the header has {len(header)}"
                    )
                    continue
                fields = fields + [""] * (len(header) - len(fields))
                yield Record(index, start, dict(zip(header, fields, strict=True)))
    except UnicodeDecodeError as e:
        raise _file_error(path, "file", "malformed_json", f"not UTF-8 text: {e.reason}") from e
    finally:
        csv.field_size_limit(old_limit)


def tsv_header(path: str | Path) -> list[str]:
    """The column names of a TSV file."""
    path = Path(path)
    _require_file(path)
    with path.open("r", encoding="utf-8", newline="") as f:
        line = f.readline()
    return [h.strip() for h in line.rstrip("\r\n").split("\t")] if line else []


def load_samples(json_path: str | Path, rows: Sequence[dict[str, Any]]) -> list[dict]:
    """The samples of a LLaVA JSON (558K, mix665K) that the `prepare` manifest `rows` kept, in manifest
    order: `{"id", "image", "conversations"}`. A row whose record does not match (the file changed after
    `prepare`) is an error."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise SeaError(f"{json_path}: dataset file not found")
    records = [r.value for r in iter_json_records(json_path)]
    samples = []
    for row in rows:
        i = int(row["index"])
        rec = records[i] if 0 <= i < len(records) else None
        if not isinstance(rec, dict) or (row.get("id") is not None and str(rec.get("id")) != str(row["id"])):
            raise SeaError(
                f"{json_path}: record {i} is not sample {row.get('id')!r} of the manifest; the file changed "
                "after `prepare` ran, run it again"
            )
        samples.append(
            {"id": str(rec.get("id")), "image": rec.get("image"), "conversations": rec["conversations"]}
        )
    return samples


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a `prepare` manifest (`{"id", "image", "index", ...}` per kept sample), in order."""
    path = Path(path)
    if not path.is_file():
        raise SeaError(f"{path}: manifest not found; run the `prepare` stage first")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
