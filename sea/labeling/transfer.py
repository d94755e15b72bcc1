"""Cross-encoder transfer (sea-method.md section 2.1 / section 9 item 8): labels made on one patch grid
mapped onto another. Both grids tile the same preprocessed view of the image; each target patch takes
the labels of the source patch that overlaps it most (ties: the lower index).

A grid may cover less than its input: SigLIP-SO400M/14 at 384 px has 27 patches of 14 px, 378 of the
384 pixels. Cells are therefore placed by `patch_cover` (the covered fraction of each side); assuming
full tiling instead would hand about a fifth of SigLIP's patches a neighbour's labels from CLIP-L@336.
Overlap area is separable (rows x columns), so the best source patch is the best source row times the
best source column.

`check_same_view` refuses a teacher whose preprocessing shows another part of the image (a centre crop
against a squash of the whole image), where patch positions would not correspond.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from sea.errors import SeaError

FULL = (1.0, 1.0)


def patch_cover(tower: Any) -> tuple[float, float]:
    """The fraction of the input's height and width that `tower`'s patch grid covers."""
    return tuple(  # type: ignore[return-value]
        g * p / s for g, p, s in zip(tower.grid, tower.patch_size, tower.image_size, strict=True)
    )


def _best_1d(src: int, dst: int, src_cover: float = 1.0, dst_cover: float = 1.0) -> torch.Tensor:
    """For each of `dst` equal cells of [0, dst_cover), the index of the `src` cell of [0, src_cover)
    overlapping it most; a cell no source cell touches takes the nearest one."""
    if src < 1 or dst < 1:
        raise SeaError(f"patch grids must be positive, got {src} -> {dst}")
    edges_s = torch.arange(src + 1, dtype=torch.float64) / src * src_cover
    edges_d = torch.arange(dst + 1, dtype=torch.float64) / dst * dst_cover
    lo = torch.maximum(edges_d[:-1, None], edges_s[None, :-1])
    hi = torch.minimum(edges_d[1:, None], edges_s[None, 1:])
    overlap = (hi - lo).clamp_min(0)  # (dst, src)
    # argmax returns the first maximum; round away float noise so exact ties stay ties
    best = (overlap * (src * dst)).round(decimals=9).argmax(dim=1)
    centre_s, centre_d = (edges_s[:-1] + edges_s[1:]) / 2, (edges_d[:-1] + edges_d[1:]) / 2
    nearest = (centre_d[:, None] - centre_s[None, :]).abs().argmin(dim=1)
    return torch.where(overlap.amax(dim=1) > 0, best, nearest)


def overlap_index(
    src_grid: Sequence[int],
    dst_grid: Sequence[int],
    src_cover: Sequence[float] = FULL,
    dst_cover: Sequence[float] = FULL,
) -> torch.Tensor:
    """(dst_rows * dst_cols,) long: the source patch (row-major index) that each target patch takes."""
    (sr, sc), (dr, dc) = tuple(src_grid), tuple(dst_grid)
    rows = _best_1d(sr, dr, float(src_cover[0]), float(dst_cover[0]))
    cols = _best_1d(sc, dc, float(src_cover[1]), float(dst_cover[1]))
    return (rows[:, None] * sc + cols[None, :]).reshape(-1)


def transfer_labels(
    ids: torch.Tensor,
    scores: torch.Tensor,
    src_grid: Sequence[int],
    dst_grid: Sequence[int],
    src_cover: Sequence[float] = FULL,
    dst_cover: Sequence[float] = FULL,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map labels (B, N_src, n) on `src_grid` onto `dst_grid`: (B, N_dst, n)."""
    n_src = int(src_grid[0]) * int(src_grid[1])
    if ids.shape[1] != n_src:
        raise SeaError(f"labels have {ids.shape[1]} patches, source grid {tuple(src_grid)} has {n_src}")
    if tuple(src_grid) == tuple(dst_grid) and tuple(src_cover) == tuple(dst_cover):
        return ids, scores
    index = overlap_index(src_grid, dst_grid, src_cover, dst_cover).to(ids.device)
    return ids[:, index], scores[:, index]


def check_same_view(teacher: Mapping[str, Any], student: Mapping[str, Any]) -> None:
    """Teacher and student preprocessing (`preprocess_signature()`s) must show the same part of each
    image (`resize_mode`, and the padding colour when padding); size and normalisation may differ."""
    mode_t, mode_s = teacher.get("resize_mode"), student.get("resize_mode")
    problem = None
    if mode_t != mode_s:
        problem = f"resize_mode '{mode_t}' vs '{mode_s}'"
    elif mode_t == "longest" and teacher.get("fill_color") != student.get("fill_color"):
        problem = f"padding colour {teacher.get('fill_color')} vs {student.get('fill_color')}"
    if problem:
        raise SeaError(
            f"label.teacher '{teacher.get('model')}' and model.vision '{student.get('model')}' see different "
            f"parts of each image ({problem}), so transferred patch labels would describe other pixels: "
            f"set label.teacher.resize_mode={mode_s} (or model.vision.resize_mode={mode_t})"
        )
