"""Helpers shared by the scorers: the result shape, percentages, id keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sea.errors import SeaError

Result = dict[str, Any]


def pct(num: float, den: float) -> float | None:
    """`num / den * 100` (the reference scripts' order of operations), None when `den` is 0."""
    return num / den * 100 if den else None


def qid_key(value: Any) -> str:
    """Question ids compared as strings, so `1` and `"1"` match (LLaVA files mix both)."""
    return str(value)


def result(
    benchmark: str,
    metrics: dict[str, float | None],
    counts: dict[str, int],
    splits: dict[str, dict[str, float | None]] | None = None,
    details: dict[str, Any] | None = None,
) -> Result:
    """The common result shape. `metrics` (and each split's) are numbers in percent (MME: points); None
    values (an empty subset) are dropped."""
    out: Result = {
        "benchmark": benchmark,
        "metrics": {k: v for k, v in metrics.items() if v is not None},
        "counts": counts,
    }
    if splits:
        out["splits"] = {s: {k: v for k, v in m.items() if v is not None} for s, m in splits.items()}
    if details:
        out["details"] = details
    return out


def require_path(path: str | Path | None, benchmark: str, what: str) -> Path:
    """`path` as a Path; SeaError when it is not given or does not exist."""
    if path is None or str(path) == "":
        raise SeaError(f"{benchmark}: {what} is required")
    p = Path(path)
    if not p.exists():
        raise SeaError(f"{benchmark}: {what} not found: {p}")
    return p


def best_constant(answers: list[Any], metric: str) -> dict[str, Any]:
    """`chance` of an exact-match benchmark: the share (percent) of the most common right answer, what
    an answerer giving one fixed answer to every question scores at best."""
    from collections import Counter

    if not answers:
        return {"metrics": {}, "rule": "no questions"}
    answer, count = Counter(map(str, answers)).most_common(1)[0]
    return {
        "metrics": {metric: count / len(answers) * 100},
        "rule": f"always {answer!r} (best constant answer)",
    }
