"""Per-unit outcomes of a scored answer file: what the report's paired bootstrap resamples.

A scorer's result carries `outcomes`: the units its headline metric is computed over, in strata, each
unit with a few numbers whose per-stratum sums determine the headline (`headline`):

| scorer | unit | strata | columns | aggregate |
|---|---|---|---|---|
| gqa | question | one | correct | `mean` |
| pope | question | split | tp, fp, tn, fn (one-hot) | `pope_f1` |
| mme | image (its question pair) | perception subtask | correct (0-2), both (0/1) | `mme_sum` |
| mmbench | original question with its circular copies | one | hit | `mean` |

Aggregates: `mean` = 100 × Σ first column / n; `pope_f1` = mean over strata of each stratum's F1 (0 where
the reference divides by zero); `mme_sum` = Σ over strata of 100 × (correct / 2n + both / n).

A resample draws units with replacement within each stratum, keeping every stratum's size (POPE's splits
and MME's subtasks have fixed sizes in the benchmark). `evaluate` writes the outcomes to `outcomes.json`
next to `scores.json`; the report checks that `headline` over all units gives the scorer's number.

JSON form: `{"aggregate", "unit", "columns": [...], "strata": {name: {"ids": [...], "values": [[...]]}}}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sea.errors import SeaError

AGGREGATES = ("mean", "pope_f1", "mme_sum")


def unit_outcomes(
    aggregate: str,
    unit: str,
    columns: Sequence[str],
    strata: Mapping[str, Sequence[tuple[Any, Sequence[float]]]],
) -> dict[str, Any]:
    """The JSON form from `{stratum: [(unit id, values), ...]}` (empty strata dropped)."""
    if aggregate not in AGGREGATES:
        raise SeaError(f"outcomes: unknown aggregate {aggregate!r}; known: {', '.join(AGGREGATES)}")
    return {
        "aggregate": aggregate,
        "unit": unit,
        "columns": list(columns),
        "strata": {
            name: {"ids": [str(i) for i, _ in rows], "values": [list(v) for _, v in rows]}
            for name, rows in strata.items()
            if rows
        },
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (POPE's definition where the reference divides by zero)."""
    safe = np.where(den == 0, 1.0, den)
    return np.where(den == 0, 0.0, num / safe)


def headline(aggregate: str, sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The headline metric from per-stratum column sums `sums[..., stratum, column]` and the strata's
    unit counts `sizes[stratum]`; leading axes (e.g. resamples) are kept."""
    sums = np.asarray(sums, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    if aggregate == "mean":
        return 100 * sums[..., :, 0].sum(axis=-1) / sizes.sum()
    if aggregate == "pope_f1":
        tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 3]
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * precision * recall, precision + recall)
        return (f1 * 100).mean(axis=-1)
    if aggregate == "mme_sum":
        return (sums[..., 0] / (2 * sizes) * 100 + sums[..., 1] / sizes * 100).sum(axis=-1)
    raise SeaError(f"outcomes: unknown aggregate {aggregate!r}; known: {', '.join(AGGREGATES)}")


def point_headline(outcomes: Mapping[str, Any]) -> float:
    """The headline over all units (what the scorer reported)."""
    strata = list(outcomes["strata"].values())
    sums = np.array([np.asarray(s["values"], dtype=float).sum(axis=0) for s in strata])
    sizes = np.array([len(s["ids"]) for s in strata])
    return float(headline(outcomes["aggregate"], sums, sizes))
