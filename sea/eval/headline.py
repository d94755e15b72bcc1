"""The report's headline numbers as flat metrics, for the pipeline's parent run: what a reader compares
across pipelines (each benchmark's mean per arm, each arm's difference and relative gain against the
baseline, the average relative gain with its interval and how many benchmarks it covers). The stage
runs keep their own detailed metrics; the parent does not repeat them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def headline_metrics(comparison: Mapping[str, Any]) -> dict[str, float]:
    """Flat `report/...` metrics from `comparison.json`; a value that is missing or None is left out."""
    out: dict[str, float] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"report/{key}"] = float(value)

    for bench, b in (comparison.get("benchmarks") or {}).items():
        for arm, mean in (b.get("mean") or {}).items():
            put(f"{bench}/{arm}", mean)
            put(f"{bench}/{arm}/flagged", float(bool((b.get("flags") or {}).get(arm))))
        for arm, delta in (b.get("delta") or {}).items():
            put(f"{bench}/delta/{arm}", delta)
            put(f"{bench}/gain/{arm}", (b.get("gain") or {}).get(arm))
    for arm, avg in (comparison.get("average") or {}).items():
        put(f"average_gain/{arm}", avg.get("gain"))
        low, high = (avg.get("ci") or (None, None))[:2]
        put(f"average_gain/{arm}/ci_low", low)
        put(f"average_gain/{arm}/ci_high", high)
        put(f"average_gain/{arm}/benchmarks", len(avg.get("benchmarks") or []))
        put(f"average_gain/{arm}/significant", float(bool(avg.get("significant"))))
    return out
