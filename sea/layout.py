"""The folder layout the stages and the components agree on: where a training run (seed, arm) lives,
the finished-run marker, `prepare`'s manifests, a run's stage-1 adapter, and what identifies an input.

Components (training, evaluation, reports) read folders through these names, never through the stage
layer (`sea.stages`), so the layering stays one way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sea.utils.io import read_json

# The marker of a finished stage run: config hash, metrics, size and sha256 of every output file.
SUCCESS = "_SUCCESS.json"
# A stage-1 adapter, in `align`'s run folder and in a saved model folder.
ADAPTER_FILE = "adapter.safetensors"
# A training run's step log (in its checkpoint folder, then in its output folder).
TRAIN_LOG = "train_log.jsonl"
# What `evaluate` writes per run: the scores, and the per-question outcomes the report resamples.
SCORES_FILE = "scores.json"
OUTCOMES_FILE = "outcomes.json"
# What `report` writes.
REPORT_MD = "report.md"
COMPARISON_JSON = "comparison.json"


def instance_subdir(seed: int, arm: str) -> str:
    """Where one training run (seed, arm) of a per-arm stage lives under the stage's folder."""
    return f"seed{int(seed)}/{arm}"


# `prepare`'s manifest of the pretrain samples held out of training (`data.pretrain.holdout`): the
# images of the alignment diagnostics.
HELD_OUT = "pretrain_heldout"


def manifest_name(dataset: str) -> str:
    """`prepare`'s manifest of `dataset`, relative to the prepared folder."""
    return f"manifests/{dataset}.jsonl"


def manifest_path(prepared: str | Path, dataset: str) -> Path:
    return Path(prepared) / manifest_name(dataset)


def adapter_path(adapters: str | Path, seed: int, arm: str) -> Path:
    """The stage-1 adapter of run (seed, arm) under `align`'s output folder `adapters`."""
    return Path(adapters) / instance_subdir(seed, arm) / ADAPTER_FILE


def input_fingerprint(path: Path) -> Any:
    """What identifies an input's content cheaply: a finished stage's hash, or a file's size and mtime."""
    if (path / SUCCESS).is_file():
        return read_json(path / SUCCESS)["config_hash"]
    if path.is_file():
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    return None


def root_relative(value: Any, root: str | Path | None) -> Any:
    """`value` (a JSON-like tree) with every path string under `root` written as `<root>/...`, so
    hashes and fingerprints survive moving or copying the root."""
    if root is None:
        return value
    root = str(root).rstrip("/")
    if isinstance(value, dict):
        return {root_relative(k, root): root_relative(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [root_relative(v, root) for v in value]
    if isinstance(value, (str, Path)) and (str(value) == root or str(value).startswith(root + "/")):
        return "<root>" + str(value)[len(root) :]
    return value
