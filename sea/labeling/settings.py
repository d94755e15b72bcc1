"""Settings of the `label` config section's sub-sections (torch-free, so that the stage module stays cheap
to import; the labeler's own keys are `sea.labeling.labeler.LabelSettings`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sea.utils.settings import settings_from


@dataclass(frozen=True)
class Guard:
    """`label.guard`: labels must agree with the captions clearly above chance and must not collapse."""

    enabled: bool
    min_lift: float  # patch agreement >= min_lift x chance
    min_margin: float  # patch agreement - chance >= min_margin
    max_top1_share: float  # no single word is the top-1 label of more than this share of patches

    @classmethod
    def from_config(cls, c: Any) -> Guard:
        return settings_from(cls, c, "label.guard")


@dataclass(frozen=True)
class Agreement:
    """`label.agreement`: caption agreement measured on the first `max_images` pretrain images."""

    max_images: int
    top_k: int
    image_words: int


@dataclass(frozen=True)
class Quality:
    """`label.quality`: the report against the world's per-patch ground truth (skipped without it)."""

    enabled: bool
    ground_truth: str | None
    max_images: int
    label_maps: int
    filters: Any  # background filter specs measured besides `none` and the configured one


@dataclass(frozen=True)
class LabelSection:
    """The whole `label` section (conf/label/default.yaml explains every value): unknown keys refused.
    The labeler reads its keys through `LabelSettings.from_config`."""

    top_n: int
    min_score: float
    feature: str
    sign: str
    prompt: Any  # a template or a list of them
    batch_size: int
    background: Any  # a BackgroundFilter spec
    center_words: bool
    shard_size: int
    max_images: int | None
    text_batch_size: int
    text_cache_dir: str | None
    chunk_elems: int
    progress: bool
    teacher: Any  # a model.vision-style mapping, or null
    agreement: Agreement
    guard: Guard
    quality: Quality

    @classmethod
    def from_config(cls, section: Any) -> LabelSection:
        return settings_from(cls, section, "label")
