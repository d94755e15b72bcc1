"""Cross-encoder transfer (sea-method.md section 2.1 / section 9 item 8): labels made on one patch grid
mapped onto another. Both grids tile the same (preprocessed) image; each target patch takes the labels
of the source patch that overlaps it most (ties: the lower index).

Overlap area is separable (rows x columns), so the best source patch is the best source row times the
best source column.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sea.errors import SeaError


def _best_1d(src: int, dst: int) -> torch.Tensor:
    """For each of `dst` equal cells of [0, 1), the index of the `src` cell overlapping it most."""
    if src < 1 or dst < 1:
        raise SeaError(f"patch grids must be positive, got {src} -> {dst}")
    edges_s = torch.arange(src + 1, dtype=torch.float64) / src
    edges_d = torch.arange(dst + 1, dtype=torch.float64) / dst
    lo = torch.maximum(edges_d[:-1, None], edges_s[None, :-1])
    hi = torch.minimum(edges_d[1:, None], edges_s[None, 1:])
    overlap = (hi - lo).clamp_min(0)  # (dst, src)
    # argmax returns the first maximum; round away float noise so exact ties stay ties
    return (overlap * (src * dst)).round(decimals=9).argmax(dim=1)


def overlap_index(src_grid: Sequence[int], dst_grid: Sequence[int]) -> torch.Tensor:
    """(dst_rows * dst_cols,) long: the source patch (row-major index) that each target patch takes."""
    (sr, sc), (dr, dc) = tuple(src_grid), tuple(dst_grid)
    rows, cols = _best_1d(sr, dr), _best_1d(sc, dc)
    return (rows[:, None] * sc + cols[None, :]).reshape(-1)


def transfer_labels(
    ids: torch.Tensor, scores: torch.Tensor, src_grid: Sequence[int], dst_grid: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map labels (B, N_src, n) on `src_grid` onto `dst_grid`: (B, N_dst, n)."""
    n_src = int(src_grid[0]) * int(src_grid[1])
    if ids.shape[1] != n_src:
        raise SeaError(f"labels have {ids.shape[1]} patches, source grid {tuple(src_grid)} has {n_src}")
    if tuple(src_grid) == tuple(dst_grid):
        return ids, scores
    index = overlap_index(src_grid, dst_grid).to(ids.device)
    return ids[:, index], scores[:, index]
