"""Patch side of labeling: images in, L2-normalised patch features in CLIP's joint space out (Eq. 6).

`feature` picks how a patch token reaches the joint space (`VisionTower.joint_patch_tokens`):
`proj` (last block -> ln_post -> proj) or `maskclip` (MaskCLIP's value path in the last block).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from sea.data.llava import open_image
from sea.errors import SeaError

log = logging.getLogger(__name__)

FEATURES = ("proj", "maskclip")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_feature(feature: str) -> str:
    if feature not in FEATURES:
        raise SeaError(f"label.feature must be one of {FEATURES}, got '{feature}'")
    return feature


def autocast(device: torch.device | str, mixed_precision: str | None) -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on CUDA when `mixed_precision` asks for it; a no-op otherwise (CPU stays fp32)."""
    device = torch.device(device)
    dtype = AMP_DTYPES.get(str(mixed_precision or "no"))
    if device.type != "cuda" or dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


@torch.no_grad()
def patch_features(
    tower: Any, images: torch.Tensor, feature: str = "proj", mixed_precision: str | None = None
) -> torch.Tensor:
    """Normalised joint-space patch features (B, N, embed_dim), fp32."""
    check_feature(feature)
    images = images.to(tower.device, non_blocking=True)
    with autocast(tower.device, mixed_precision):
        feats = tower.joint_patch_tokens(images, variant=feature)
    return torch.nn.functional.normalize(feats.float(), dim=-1)


class ImageRows(Dataset):
    """Manifest rows (`id`, `image` relative to `image_folder`) -> (index, preprocessed image)."""

    def __init__(self, rows: Sequence[dict], image_folder: str | Path, preprocess: Callable) -> None:
        self.rows = list(rows)
        self.folder = Path(image_folder)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        return i, self.preprocess(open_image(self.folder / self.rows[i]["image"], self.rows[i].get("id")))


def iter_batches(
    rows: Sequence[dict],
    image_folder: str | Path,
    preprocess: Callable,
    batch_size: int,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """(row positions, image batch) in row order."""
    loader = DataLoader(
        ImageRows(rows, image_folder, preprocess),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
    for idx, images in loader:
        yield idx.tolist(), images


def sample_features(
    tower: Any,
    rows: Sequence[dict],
    image_folder: str | Path,
    batch_size: int,
    mixed_precision: str | None = None,
    features: Sequence[str] = FEATURES,
) -> dict[str, torch.Tensor]:
    """Patch features of every variant in `features` for `rows` (one pass over the images): feature ->
    (B, N, embed_dim), normalised, on the tower's device."""
    chunks: dict[str, list[torch.Tensor]] = {f: [] for f in features}
    for _, images in iter_batches(rows, image_folder, tower.preprocess, batch_size):
        for f in features:
            chunks[f].append(patch_features(tower, images, f, mixed_precision))
    return {f: torch.cat(v) for f, v in chunks.items()}
