"""Settings of the `eval` config sections the evaluation components read (torch-free, so that the stage
modules stay cheap to import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sea.utils.settings import settings_from


@dataclass(frozen=True)
class DiagnosticsSettings:
    """`eval.diagnostics` (conf/eval/default.yaml explains every value)."""

    enabled: bool
    wordlist: str | None
    ground_truth: str | None
    image_root: str | None  # null: the ground truth's world folder
    captions: str | None
    image_folder: str | None
    held_out: str | None
    trained: Any  # manifests whose images are never used
    max_images: int
    tacs_k: int
    examples: int

    @classmethod
    def from_config(cls, section: Any) -> DiagnosticsSettings:
        return section if isinstance(section, cls) else settings_from(cls, section, "eval.diagnostics")
