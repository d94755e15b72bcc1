"""Shards + manifest round trip, the compatibility check `align` runs, and grid transfer."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from sea.errors import SeaError
from sea.labeling.storage import (
    LabelSet,
    ShardWriter,
    check_label_compatibility,
    load_labels,
    write_labels_dir,
)
from sea.labeling.transfer import overlap_index, transfer_labels

WORDS = ["red", "green", "circle"]


def write_labels(
    root: Path, tower, n_images: int = 5, shard_size: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(-1, 3, (n_images, tower.num_patches, 4), generator=g, dtype=torch.int32)
    scores = torch.rand(n_images, tower.num_patches, 4, generator=g).half()
    writer = ShardWriter(root / "shards", "r00", shard_size)
    writer.add([f"img{i}" for i in range(3)], ids[:3], scores[:3])
    writer.add([f"img{i}" for i in range(3, n_images)], ids[3:], scores[3:])
    meta = {
        "model": tower.name,
        "grid": list(tower.grid),
        "preprocess": tower.preprocess_signature(),
        "top_n": 4,
    }
    write_labels_dir(root, meta, WORDS, writer.close())
    return ids, scores


def test_round_trip_across_shards(tower, tmp_path: Path) -> None:
    ids, scores = write_labels(tmp_path, tower)
    labels = load_labels(tmp_path)
    assert len(labels) == 5 and "img4" in labels and labels.words == WORDS
    assert len(labels.manifest["shards"]) == 3 and labels.grid == tower.grid and labels.top_n == 4
    for i in range(5):
        a, b = labels.get(f"img{i}")
        assert a.dtype == torch.int32 and b.dtype == torch.float16
        assert torch.equal(a, ids[i]) and torch.equal(b, scores[i])
    a, b = labels.get_many(["img4", "img0"])
    assert torch.equal(a, ids[[4, 0]]) and torch.equal(b, scores[[4, 0]])
    with pytest.raises(KeyError, match="nope"):
        labels.get("nope")
    import pickle

    assert torch.equal(pickle.loads(pickle.dumps(labels)).get("img1")[0], ids[1])


def test_compatibility_check_accepts_own_labels(tower, tmp_path: Path) -> None:
    write_labels(tmp_path, tower)
    check_label_compatibility(load_labels(tmp_path), tower)
    check_label_compatibility(tmp_path, tower)
    check_label_compatibility(tmp_path / "manifest.json", tower)


def test_compatibility_check_refuses_another_grid(tower, tmp_path: Path) -> None:
    write_labels(tmp_path, tower)
    manifest = copy.deepcopy(load_labels(tmp_path).manifest)
    manifest["grid"] = [24, 24]
    with pytest.raises(SeaError, match=r"patch grid: labels \[24, 24\], vision tower \[4, 4\]"):
        check_label_compatibility(manifest, tower)


@pytest.mark.parametrize(
    "key,value,shown",
    [
        ("image_size", [336, 336], r"'image_size': labels \[336, 336\], vision tower \[32, 32\]"),
        ("mean", [0.5, 0.5, 0.5], r"'mean': labels \[0.5, 0.5, 0.5\]"),
        ("resize_mode", "squash", r"'resize_mode': labels 'squash', vision tower 'shortest'"),
    ],
)
def test_compatibility_check_refuses_other_preprocessing(tower, tmp_path: Path, key, value, shown) -> None:
    write_labels(tmp_path, tower)
    manifest = copy.deepcopy(load_labels(tmp_path).manifest)
    manifest["preprocess"][key] = value
    with pytest.raises(SeaError, match=shown) as err:
        check_label_compatibility(manifest, tower)
    assert tower.name in str(err.value)


def test_other_model_same_geometry_is_accepted(tower, tmp_path: Path) -> None:
    write_labels(tmp_path, tower)
    manifest = copy.deepcopy(load_labels(tmp_path).manifest)
    manifest["preprocess"]["model"] = manifest["model"] = "another-clip"
    check_label_compatibility(manifest, tower)


def test_missing_or_wrong_folder(tmp_path: Path) -> None:
    with pytest.raises(SeaError, match="run the `label` stage"):
        LabelSet(tmp_path)


def test_overlap_index() -> None:
    assert torch.equal(overlap_index((4, 4), (4, 4)), torch.arange(16))
    # CLIP-L@336 (24x24) -> DINOv2-L@224 (16x16): target cell i covers source [1.5 i, 1.5 i + 1.5)
    idx = overlap_index((24, 24), (16, 16)).reshape(16, 16)
    rows = idx[:, 0] // 24
    assert rows.tolist() == [0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23]
    assert torch.equal(idx[0, :] % 24, rows)
    # coarse -> fine: each source patch spreads over a 2x2 block
    assert overlap_index((2, 3), (4, 6)).reshape(4, 6).tolist() == [
        [0, 0, 1, 1, 2, 2],
        [0, 0, 1, 1, 2, 2],
        [3, 3, 4, 4, 5, 5],
        [3, 3, 4, 4, 5, 5],
    ]
    # a tie (middle target row overlaps both source rows equally) takes the lower index
    assert overlap_index((2, 1), (3, 1)).tolist() == [0, 0, 1]


def test_transfer_labels() -> None:
    ids = torch.arange(2 * 4 * 3, dtype=torch.int32).reshape(2, 4, 3)
    scores = ids.half()
    a, b = transfer_labels(ids, scores, (2, 2), (4, 4))
    assert a.shape == (2, 16, 3)
    assert torch.equal(a[:, 5], ids[:, 0]) and torch.equal(a[:, 15], ids[:, 3]) and torch.equal(b, a.half())
    with pytest.raises(SeaError, match="source grid"):
        transfer_labels(ids, scores, (3, 3), (4, 4))


def pixel_overlap_index(src: int, src_patch: int, dst: int, dst_patch: int, dst_size: int, src_size: int):
    """Brute force on a fine common pixel raster: each target cell's most-overlapping source cell."""
    fine = src_size * dst_size  # both images resized to the same view; positions as fractions of it
    pos = torch.arange(fine, dtype=torch.float64) + 0.5
    src_cell = (pos / fine * src_size // src_patch).long()  # the source patch of each fine pixel
    dst_cell = (pos / fine * dst_size // dst_patch).long()
    best = []
    for j in range(dst):
        hits = src_cell[(dst_cell == j) & (src_cell < src)]
        best.append(int(torch.bincount(hits, minlength=src).argmax()))
    return best


def test_overlap_index_places_cells_by_the_covered_pixels() -> None:
    """CLIP-L@336 (24 x 14 = 336 px) -> SigLIP-SO400M@384 (27 x 14 = 378 of 384 px): the exact overlap,
    not the "27 cells tile the image" approximation (which differs on 3 of 27 rows)."""
    cover = 27 * 14 / 384
    idx = overlap_index((24, 24), (27, 27), (1.0, 1.0), (cover, cover)).reshape(27, 27)
    rows = (idx[:, 0] // 24).tolist()
    assert rows == pixel_overlap_index(24, 14, 27, 14, 384, 336)
    assert rows != (overlap_index((24, 24), (27, 27)).reshape(27, 27)[:, 0] // 24).tolist()
    assert torch.equal(idx[0, :] % 24, idx[:, 0] // 24)  # square: columns like rows
    # a target cell no source cell reaches takes the nearest one (source covers half the image)
    assert overlap_index((2, 1), (4, 1), (0.5, 1.0)).tolist() == [0, 1, 1, 1]


def test_transfer_labels_with_covers_moves_whole_label_lists() -> None:
    ids = torch.arange(2 * 4 * 3, dtype=torch.int32).reshape(2, 4, 3)
    scores = ids.half()
    out_ids, out_scores = transfer_labels(ids, scores, (2, 2), (3, 3), (1.0, 1.0), (0.9, 0.9))
    index = overlap_index((2, 2), (3, 3), (1.0, 1.0), (0.9, 0.9))
    assert out_ids.shape == (2, 9, 3) and torch.equal(out_ids, ids[:, index])
    assert torch.equal(out_scores, scores[:, index])
    same = transfer_labels(ids, scores, (2, 2), (2, 2))
    assert same[0] is ids  # same grid and cover: untouched


def test_check_same_view() -> None:
    from sea.labeling.transfer import check_same_view

    clip = {"model": "clip", "resize_mode": "shortest", "mean": [0.48] * 3, "image_size": [336, 336]}
    dino = {"model": "dino", "resize_mode": "shortest", "mean": [0.485] * 3, "image_size": [224, 224]}
    check_same_view(clip, dino)  # size and normalisation may differ
    siglip = {"model": "siglip", "resize_mode": "squash"}
    with pytest.raises(
        SeaError,
        match=r"'clip' and model.vision 'siglip' see different parts.*"
        r"resize_mode 'shortest' vs 'squash'.*label.teacher.resize_mode=squash",
    ):
        check_same_view(clip, siglip)
    pad = {"model": "a", "resize_mode": "longest", "fill_color": 0}
    with pytest.raises(SeaError, match="padding colour 0 vs 128"):
        check_same_view(pad, {**pad, "fill_color": 128})
