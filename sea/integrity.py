"""Finished means intact: the size and sha256 of every output file in `_SUCCESS.json`, checked by the
stage's skip check (sizes always, hashes on request) and by the stages that read the outputs.

A consumer calls `check_input(folder, producer)` before opening a finished stage's folder: a damaged
or missing file, or non-finite training metrics, is a one-line `SeaError` naming the file and the
stage to rerun. A file is hashed the first time a consumer opens it; its size and mtime then go to
`.<folder>.verified.json` beside the folder, and later consumers hash it again only when they changed
(sha256 runs at 0.1-1 GB/s: `benchmarks/hash_speed.py`).
Folders without a marker, or with a marker from before digests were recorded, pass.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.layout import SUCCESS
from sea.utils.io import atomic_write_json, read_json, sha256_file

# `SEA_VERIFY=hash`: the skip check hashes every output file instead of comparing sizes only.
VERIFY_ENV = "SEA_VERIFY"


class DamagedOutputError(SeaError):
    """A finished stage's output file is missing, has another size or another hash than recorded."""


def file_digests(folder: Path) -> dict[str, dict[str, Any]]:
    """`{relative path: {"size", "sha256"}}` of every file under `folder` but the marker."""
    return {
        p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != SUCCESS
    }


def full_check_requested() -> bool:
    return os.environ.get(VERIFY_ENV, "").lower() in ("hash", "full", "1", "true")


def find_damage(
    folder: Path, files: dict[str, dict[str, Any]], full: bool, only: set[str] | None = None
) -> str | None:
    """What is wrong with the recorded `files` of `folder` (None: intact). Sizes of every file are
    compared; hashes when `full` (of the files in `only`, or of all)."""
    for rel, want in sorted(files.items()):
        path = folder / rel
        if not path.is_file():
            return f"{path} is missing"
        size = path.stat().st_size
        if size != want["size"]:
            return f"{path} has {size} bytes, {want['size']} recorded"
    for rel, want in sorted(files.items()):
        if full and (only is None or rel in only) and sha256_file(folder / rel) != want["sha256"]:
            return f"{folder / rel} does not match its recorded sha256"
    return None


def nonfinite_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The training losses (`loss`, `loss_lm`, ...) among `metrics` that are not finite (other metrics
    may be NaN by design, e.g. a score with nothing to score)."""
    return {
        k: v
        for k, v in metrics.items()
        if k.startswith("loss") and isinstance(v, float) and not math.isfinite(v)
    }


def check_input(folder: str | Path, producer: str, files: list[str] | None = None) -> None:
    """Refuse a damaged output of stage `producer` in `folder` before it is read: every recorded size,
    the hash of `files` (None: of all), and finite metrics."""
    folder = Path(folder)
    marker = folder / SUCCESS
    if not marker.is_file():
        return
    done = read_json(marker)
    rerun = f"rerun `{producer}` (python -m sea {producer} ...)"
    bad = nonfinite_metrics(done.get("metrics") or {})
    if bad:
        raise SeaError(f"{folder}: stage `{producer}` finished with non-finite metrics {bad}; {rerun}")
    if "files" not in done:
        return
    stamp = folder.parent / f".{folder.name}.verified.json"
    seen = _stat(folder, done["files"])
    verified = read_json(stamp) if stamp.is_file() else {}
    only = {rel for rel in (done["files"] if files is None else files) if verified.get(rel) != seen.get(rel)}
    problem = find_damage(folder, done["files"], True, only)
    if problem:
        raise DamagedOutputError(f"damaged output of stage `{producer}`: {problem}; {rerun}")
    if only:  # hashed once: later consumers compare sizes and mtimes only (outside the folder: DVC's outs)
        atomic_write_json(stamp, verified | {rel: seen[rel] for rel in only})


def _stat(folder: Path, files: dict[str, Any]) -> dict[str, list[int]]:
    out = {}
    for rel in files:
        try:
            st = (folder / rel).stat()
        except FileNotFoundError:
            continue
        out[rel] = [st.st_size, st.st_mtime_ns]
    return out
