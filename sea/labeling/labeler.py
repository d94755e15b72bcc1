"""The labeler: a CLIP vision tower plus the embedded word list -> labels per patch, batch by batch.

`LabelSettings` is the `label` config; `Labeler.label_batch(images)` returns (ids int32, scores fp16),
(B, N, n) on the target grid (the labeling tower's own grid, or another tower's for cross-encoder
transfer); `label_rows` labels manifest rows into a `ShardWriter` with a progress bar (images/s).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from sea.labeling.agreement import AUTO
from sea.labeling.patches import AMP_DTYPES, check_feature, iter_batches, patch_features
from sea.labeling.scoring import DEFAULT_CHUNK_ELEMS, BackgroundFilter, check_sign, score_patches
from sea.labeling.storage import ShardWriter
from sea.labeling.text import templates_of
from sea.labeling.transfer import patch_cover, transfer_labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelSettings:
    """The `label` config group (see conf/label/default.yaml)."""

    top_n: int = 10
    min_score: float = 0.0
    feature: str = "maskclip"
    sign: str = "cosine"
    prompt: tuple[str, ...] = ("{}",)
    batch_size: int = 64
    shard_size: int = 4096
    chunk_elems: int = DEFAULT_CHUNK_ELEMS
    background: BackgroundFilter = field(default_factory=BackgroundFilter)
    center_words: bool = False

    def __post_init__(self) -> None:
        if self.feature != AUTO:
            check_feature(self.feature)
        if self.sign != AUTO:
            check_sign(self.sign)
        templates_of(list(self.prompt))
        if self.top_n < 1 or self.batch_size < 1:
            from sea.errors import SeaError

            raise SeaError(
                f"label.top_n and label.batch_size must be >= 1, got {self.top_n}, {self.batch_size}"
            )

    @classmethod
    def from_config(cls, c: Any) -> LabelSettings:
        """The labeler's keys of the `label` section (the stage checks the whole section first)."""
        prompt = c["prompt"]
        return cls(
            top_n=int(c["top_n"]),
            min_score=float(c["min_score"]),
            feature=str(c["feature"]),
            sign=str(c["sign"]),
            prompt=(prompt,) if isinstance(prompt, str) else tuple(prompt),
            batch_size=int(c["batch_size"]),
            shard_size=int(c["shard_size"]),
            chunk_elems=int(c["chunk_elems"]),
            background=BackgroundFilter.from_config(c["background"]),
            center_words=bool(c.get("center_words", False)),
        )

    @property
    def auto(self) -> bool:
        """Whether `feature` or `sign` is `auto` (picked by caption agreement, `sea.labeling.agreement`)."""
        return AUTO in (self.feature, self.sign)

    def with_variant(self, variant: str) -> LabelSettings:
        """These settings with `<feature>/<sign>` set."""
        feature, sign = variant.split("/")
        return replace(self, feature=feature, sign=sign)

    def describe(self) -> dict[str, Any]:
        """What the manifest records about how labels were made."""
        b = self.background
        return {
            "top_n": self.top_n,
            "min_score": self.min_score,
            "feature": self.feature,
            "sign": self.sign,
            "prompt": list(self.prompt),
            "center_words": self.center_words,
            "background": {
                "mode": b.mode,
                "margin": b.margin,
                "words": list(b.words),
                "threshold": b.threshold,
            },
        }


class Labeler:
    """Labels images with `tower` (a `VisionTower`) against normalised word embeddings `text` (q, d).
    With `settings.center_words`, `centers` holds each feature's mean patch feature over a sample
    (`sea.labeling.scoring.centered`)."""

    def __init__(
        self,
        tower: Any,
        text: torch.Tensor,
        words: Sequence[str],
        settings: LabelSettings,
        mixed_precision: str | None = None,
        target_grid: Sequence[int] | None = None,
        target_cover: Sequence[float] | None = None,
        centers: dict[str, torch.Tensor] | None = None,
    ) -> None:
        if settings.auto:
            raise ValueError("resolve label.feature / label.sign 'auto' (LabelSettings.with_variant) first")
        self.tower = tower
        self.settings = settings
        self.mixed_precision = mixed_precision
        self.source_grid = tuple(tower.grid)
        self.target_grid = tuple(target_grid) if target_grid is not None else self.source_grid
        self.source_cover = patch_cover(tower)
        self.target_cover = tuple(target_cover) if target_cover is not None else self.source_cover
        amp = AMP_DTYPES.get(str(mixed_precision or "no"))
        on_gpu = torch.device(tower.device).type == "cuda"
        self.matmul_dtype = amp if (on_gpu and amp is not None) else torch.float32
        self.text = text.to(tower.device, self.matmul_dtype)
        self.centers = dict(centers or {}) if settings.center_words else {}
        if settings.center_words and settings.feature not in self.centers:
            raise ValueError(f"label.center_words: no mean patch feature given for '{settings.feature}'")
        self.bg_word_ids = settings.background.word_ids(words)
        if settings.background.mode in ("word", "mean_sim_word") and not self.bg_word_ids:
            log.warning(
                "background filter '%s': none of %s is in the word list",
                settings.background.mode,
                settings.background.words,
            )

    @torch.no_grad()
    def label_batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids int32, scores fp16), (B, N_target, n), on the tower's device."""
        s = self.settings
        feats = patch_features(self.tower, images, s.feature, self.mixed_precision)
        ids, scores = score_patches(
            feats,
            self.text,
            s.top_n,
            s.sign,
            s.min_score,
            s.background,
            self.bg_word_ids,
            s.chunk_elems,
            self.matmul_dtype,
            self.centers.get(s.feature),
        )
        return transfer_labels(
            ids, scores, self.source_grid, self.target_grid, self.source_cover, self.target_cover
        )


@dataclass
class LabelStats:
    """Counts of one labeling run (summed over processes)."""

    images: int = 0
    patches: int = 0
    labelled_patches: int = 0
    labels: int = 0
    seconds: float = 0.0

    def add(self, ids: torch.Tensor) -> None:
        self.images += ids.shape[0]
        self.patches += ids.shape[0] * ids.shape[1]
        self.labelled_patches += int((ids[..., 0] >= 0).sum())
        self.labels += int((ids >= 0).sum())

    def merge(self, other: dict[str, Any]) -> None:
        for key in ("images", "patches", "labelled_patches", "labels"):
            setattr(self, key, getattr(self, key) + int(other[key]))
        self.seconds = max(self.seconds, float(other["seconds"]))

    def metrics(self) -> dict[str, float]:
        p = max(1, self.patches)
        return {
            "images": self.images,
            "patches": self.patches,
            "labelled_patch_fraction": self.labelled_patches / p,
            "labels_per_patch": self.labels / p,
            "seconds_labeling": self.seconds,
            "images_per_s": self.images / self.seconds if self.seconds > 0 else 0.0,
        }


def label_rows(
    labeler: Labeler,
    rows: Sequence[dict],
    image_folder: str | Path,
    writer: ShardWriter,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "label",
) -> LabelStats:
    """Label manifest rows (`id`, `image`) in order into `writer` with a progress bar in images/s."""
    from tqdm import tqdm

    stats = LabelStats()
    start = time.perf_counter()
    pin = torch.device(labeler.tower.device).type == "cuda"
    bar = tqdm(total=len(rows), desc=desc, unit="img", disable=not progress, mininterval=1.0, smoothing=0.1)
    with bar:
        for idx, images in iter_batches(
            rows, image_folder, labeler.tower.preprocess, labeler.settings.batch_size, num_workers, pin
        ):
            ids, scores = labeler.label_batch(images)
            ids, scores = ids.cpu(), scores.cpu()
            writer.add([rows[i]["id"] for i in idx], ids, scores)
            stats.add(ids)
            bar.update(len(idx))
    writer.close()
    stats.seconds = time.perf_counter() - start
    return stats
