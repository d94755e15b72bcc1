"""Scores returned by an evaluation server, read into the scorers' result shape so that `report` can
compare them like a local score (`python -m sea.eval.score <kind> --server-result FILE [--into
scores.json]`).

Accepted files:

- JSON from EvalAI (VQAv2, VizWiz): `[{"<split>": {"overall": ..., "yes/no": ..., ...}}]`, the same as an
  object `{"<split>": {...}}`, or one flat `{"overall": ..., ...}`;
- CSV with a header row (the MMBench server's / VLMEvalKit's accuracy table with `split`, `Overall` and
  one column per ability; the MM-Vet grader's `*-cap-score-*.csv` with `rec, ocr, ..., total`): one row,
  or the row whose `split` column is `split`.

Metrics: the overall number first, as `accuracy` (`overall` / `Overall` / `acc`) or `total` (MM-Vet),
then every other number under `type/<column>`. Numbers are percent; a table whose overall number is at
most 1 is read as fractions and scaled by 100.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.scorers.common import Result, result
from sea.eval.uploads import SERVERS

OVERALL = {"overall": "accuracy", "acc": "accuracy", "accuracy": "accuracy", "total": "total"}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _pick_split(tables: dict[str, Any], split: str | None, path: Path) -> tuple[str | None, dict[str, Any]]:
    if split is not None:
        if split not in tables:
            raise SeaError(f"{path}: no split {split!r} (it has {sorted(tables)})")
        return split, tables[split]
    if len(tables) != 1:
        raise SeaError(f"{path}: several splits {sorted(tables)}: name one with --split")
    name = next(iter(tables))
    return name, tables[name]


def _json_tables(data: Any, path: Path) -> dict[str, Any]:
    if isinstance(data, list):
        tables: dict[str, Any] = {}
        for entry in data:
            if not isinstance(entry, dict):
                raise SeaError(
                    f"{path}: expected a list of {{split: metrics}} objects (EvalAI's result file)"
                )
            tables.update(entry)
        data = tables
    if not isinstance(data, dict):
        raise SeaError(f"{path}: expected an object of metrics or of splits")
    if all(isinstance(v, dict) for v in data.values()) and data:
        return data
    return {"": data}


def _csv_tables(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SeaError(f"{path}: no rows under the header")
    key = next((k for k in rows[0] if k and k.strip().lower() == "split"), None)
    if key is None:
        if len(rows) != 1:
            raise SeaError(f"{path}: {len(rows)} rows and no 'split' column to choose one")
        return {"": rows[0]}
    return {str(r[key]): {k: v for k, v in r.items() if k != key} for r in rows}


def read_server_result(kind: str, path: str | Path, split: str | None = None) -> Result:
    """The server's scores for upload kind `kind` (`sea.eval.uploads.SERVERS`) from `path`."""
    if kind not in SERVERS:
        raise SeaError(f"no evaluation server for {kind!r}; known: {', '.join(sorted(SERVERS))}")
    path = Path(path)
    if not path.is_file():
        raise SeaError(f"server result file not found: {path}")
    if path.suffix.lower() == ".csv":
        tables = _csv_tables(path)
    else:
        try:
            tables = _json_tables(json.loads(path.read_text(encoding="utf-8")), path)
        except json.JSONDecodeError as e:
            raise SeaError(f"{path}: neither JSON ({e.msg}) nor a .csv file") from e
    chosen, table = _pick_split(tables, split, path)
    numbers = {str(k).strip(): _number(v) for k, v in table.items() if k is not None}
    numbers = {k: v for k, v in numbers.items() if v is not None}
    overall = next(((k, OVERALL[k.lower()]) for k in numbers if k.lower() in OVERALL), None)
    if overall is None:
        raise SeaError(f"{path}: no overall score (one of {sorted(OVERALL)}) among {sorted(numbers)}")
    scale = 100.0 if numbers[overall[0]] <= 1.0 else 1.0
    metrics = {overall[1]: numbers[overall[0]] * scale}
    metrics |= {f"type/{k}": v * scale for k, v in numbers.items() if k != overall[0]}
    out = result(kind, metrics, {})
    out["server"] = {
        "name": SERVERS[kind],
        "status": "scored",
        "result_file": str(path),
        "split": chosen or None,
        "scale": scale,
    }
    return out


def merge_into_scores(scores_path: str | Path, name: str, res: Result) -> dict[str, Any]:
    """Put `res` under `name` in an evaluate `scores.json` (keeping that entry's `upload` and server
    name); returns the whole file's content."""
    from sea.utils.io import atomic_write_json

    scores_path = Path(scores_path)
    if not scores_path.is_file():
        raise SeaError(f"scores file not found: {scores_path} (run the evaluate stage first)")
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    before = scores.get(name) or {}
    merged = dict(res)
    if "upload" in before:
        merged["upload"] = before["upload"]
    if "counts" in before:
        merged["counts"] = before["counts"]
    scores[name] = merged
    atomic_write_json(scores_path, scores)
    return scores
