"""Flat metric names and the per-benchmark markdown table."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

# MLflow accepts letters, digits, "_", "-", ".", " ", ":" and "/" in metric names.
_BAD = re.compile(r"[^A-Za-z0-9_\-. :/]+")


def metric_name(*parts: str) -> str:
    """Join parts with "/", every character MLflow refuses replaced by "_"."""
    return "/".join(_BAD.sub("_", str(p)).strip("_") or "_" for p in parts)


def flat_metrics(results: Mapping[str, Mapping[str, Any]], prefix: str | None = None) -> dict[str, float]:
    """`{benchmark: result}` -> `{"[prefix/]benchmark/metric": v, "[prefix/]benchmark_split/metric": v}`
    (a POPE split becomes e.g. `pope_random/f1`)."""
    out: dict[str, float] = {}
    head = (prefix,) if prefix else ()
    for bench, res in results.items():
        for key, value in (res.get("metrics") or {}).items():
            out[metric_name(*head, bench, *key.split("/"))] = float(value)
        for split, metrics in (res.get("splits") or {}).items():
            for key, value in metrics.items():
                out[metric_name(*head, f"{bench}_{split}", *key.split("/"))] = float(value)
    return out


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2f}" if abs(value) < 1e4 else f"{value:.0f}"


def markdown_table(columns: Mapping[str, Mapping[str, float]], title: str = "metric") -> str:
    """A markdown table: one row per metric name (first-seen order), one column per key of `columns`
    (e.g. per arm), "-" where a column lacks the metric."""
    rows: dict[str, None] = {}
    for metrics in columns.values():
        rows.update(dict.fromkeys(metrics))
    names = list(columns)
    lines = [
        "| " + " | ".join([title, *names]) + " |",
        "|" + "---|" * (len(names) + 1),
    ]
    for row in rows:
        lines.append("| " + " | ".join([row, *(_fmt(columns[n].get(row)) for n in names)]) + " |")
    return "\n".join(lines)
