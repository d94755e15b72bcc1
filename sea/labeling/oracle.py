"""Oracle labels: SEA's per-patch labels written from the shapes world's ground truth instead of CLIP,
optionally corrupted to a given label precision. They separate "does the alignment loss help when the
labels are right" from "are CLIP's labels good enough" (a dose-response of SEA's gain against label
quality).

An object patch gets two labels, its object's colour word and shape word, with equal scores (so the
pair sampler draws each half of the time); a background patch gets none. `precision` < 1 corrupts
exactly round((1 - precision) * labelled patches) patches, chosen with a seeded permutation: both of
their labels are replaced by two other ground-truth words (colour or shape words of the world, never
the patch's own), the confusions a CLIP makes. Precision is measured as the `label` stage measures it
(`sea.labeling.quality.evaluate`: labelled patches whose top-1 word is right).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sea.errors import SeaError
from sea.labeling.quality import GroundTruth, ground_truth_on_grid, read_ground_truth

LABEL_SOURCES = ("clip", "oracle")


def oracle_ids(gt: GroundTruth) -> torch.Tensor:
    """(B, N, 2) label ids from ground truth: colour and shape word of each object patch, -1 elsewhere
    (background, or a word absent from the word list)."""
    ids = gt.words.clone()
    ids[gt.objects == 0] = -1
    return ids.clamp(min=-1)


def corrupt(ids: torch.Tensor, precision: float, seed: int) -> torch.Tensor:
    """`ids` (B, N, n) with exactly round((1 - precision) * labelled) labelled patches relabelled with
    wrong words drawn from the words `ids` uses (deterministic in `seed`)."""
    if not 0.0 <= precision <= 1.0:
        raise SeaError(f"label precision must be in [0, 1], got {precision}")
    out = ids.clone()
    flat = out.reshape(-1, ids.shape[-1])
    labelled = torch.nonzero(flat[:, 0] >= 0).squeeze(1)
    vocab = torch.unique(flat[flat >= 0])
    n_bad = round((1.0 - precision) * labelled.numel())
    if n_bad == 0:
        return out
    if vocab.numel() <= ids.shape[-1]:
        raise SeaError(f"cannot corrupt labels over a vocabulary of {vocab.numel()} words")
    g = torch.Generator().manual_seed(int(seed))
    chosen = labelled[torch.randperm(labelled.numel(), generator=g)[:n_bad]]
    for row in chosen.tolist():
        wrong = vocab[~torch.isin(vocab, flat[row])]
        flat[row] = wrong[torch.randperm(wrong.numel(), generator=g)[: flat.shape[1]]]
    return out


def oracle_labels(
    rows: Sequence[dict[str, Any]],
    ground_truth: str | Path,
    words: Sequence[str],
    grid: Sequence[int],
    precision: float = 1.0,
    seed: int = 0,
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], GroundTruth]:
    """Labels per image id (ids int32 (N, 2), scores fp16 (N, 2)) for the manifest `rows` (`id`, `image`)
    on the vision tower's `grid`, from the world's ground truth file, indexing `words`; also the ground
    truth they were made from."""
    path = Path(ground_truth)
    if not path.is_file():
        raise SeaError(
            f"{path}: no ground truth for oracle labels (label_source.kind=oracle needs the shapes world)"
        )
    truth = read_ground_truth(path)
    missing = [r["id"] for r in rows if r["image"] not in truth]
    if missing:
        raise SeaError(f"{path}: no ground truth for {len(missing)} training images (first: {missing[:3]})")
    gt = ground_truth_on_grid([truth[r["image"]] for r in rows], [r["id"] for r in rows], grid, words)
    ids = corrupt(oracle_ids(gt), precision, seed)
    scores = torch.where(ids >= 0, 1.0, 0.0).to(torch.float16)
    labels = {r["id"]: (ids[i].to(torch.int32), scores[i]) for i, r in enumerate(rows)}
    return labels, gt
