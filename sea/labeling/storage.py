"""Label storage: safetensors shards plus one manifest, and the compatibility check `align` runs.

Layout of a labels folder:

- `manifest.json`: what made the labels (`model`, `model_fingerprint`, `feature`, `sign`, `top_n`,
  `min_score`, `background`, `prompt`), what they fit (`grid`, `preprocess`: the vision tower's
  `preprocess_signature()`; `teacher` when labels were transferred from another CLIP), the word list
  (`words`: file, sha256, count), `shards` (file, count) and `index`: image id -> [shard, offset];
- `words.txt`: the word list the ids index;
- `shards/*.safetensors`: `ids` int32 (M, N, n), -1 = empty slot, and `scores` fp16 (M, N, n); the
  shard's image ids in the metadata field `image_ids` (JSON list).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from sea.errors import SeaError
from sea.utils.io import read_json, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WORDS = "words.txt"
SHARDS = "shards"
# Keys of `VisionTower.preprocess_signature()` that must agree for patch indices to correspond.
GEOMETRY_KEYS = ("image_size", "patch_size", "mean", "std", "interpolation", "resize_mode", "fill_color")


class ShardWriter:
    """Buffers labels and writes a shard every `shard_size` images into `directory`."""

    def __init__(self, directory: str | Path, prefix: str = "r00", shard_size: int = 4096) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.shard_size = max(1, int(shard_size))
        self.records: list[dict[str, Any]] = []
        self._ids: list[torch.Tensor] = []
        self._scores: list[torch.Tensor] = []
        self._names: list[str] = []

    def add(self, image_ids: Sequence[str], ids: torch.Tensor, scores: torch.Tensor) -> None:
        """Labels of a batch: `ids` int32 / `scores` fp16, (B, N, n)."""
        if len(image_ids) != ids.shape[0] or ids.shape != scores.shape:
            raise ValueError(
                f"{len(image_ids)} image ids for labels {tuple(ids.shape)} / {tuple(scores.shape)}"
            )
        self._names += [str(i) for i in image_ids]
        self._ids.append(ids.detach().to("cpu", torch.int32))
        self._scores.append(scores.detach().to("cpu", torch.float16))
        while len(self._names) >= self.shard_size:
            self._flush(self.shard_size)

    def close(self) -> list[dict[str, Any]]:
        """Write what is left; the shard records (`file` relative to `directory`, `count`, `image_ids`)."""
        if self._names:
            self._flush(len(self._names))
        return self.records

    def _flush(self, count: int) -> None:
        from safetensors.torch import save_file

        ids, scores = torch.cat(self._ids), torch.cat(self._scores)
        names, self._names = self._names[:count], self._names[count:]
        self._ids, self._scores = [ids[count:]], [scores[count:]]
        name = f"labels-{self.prefix}-{len(self.records):05d}.safetensors"
        self.directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {"ids": ids[:count].contiguous(), "scores": scores[:count].contiguous()},
            str(self.directory / name),
            metadata={"image_ids": json.dumps(names)},
        )
        self.records.append({"file": name, "count": count, "image_ids": names})


def build_manifest(meta: dict[str, Any], shard_records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The manifest from the labeling description `meta` and shard records (`file` under `shards/`);
    a repeated image id keeps its first labels (logged)."""
    shards: list[dict[str, Any]] = []
    index: dict[str, list[int]] = {}
    repeats = 0
    for rec in shard_records:
        k = len(shards)
        shards.append({"file": f"{SHARDS}/{rec['file']}", "count": int(rec["count"])})
        for offset, image_id in enumerate(rec["image_ids"]):
            if image_id in index:
                repeats += 1
                continue
            index[image_id] = [k, offset]
    if repeats:
        log.warning("labels: %d repeated image ids kept their first labels", repeats)
    return {
        "format_version": FORMAT_VERSION,
        **meta,
        "num_images": len(index),
        "shards": shards,
        "index": index,
    }


def write_labels_dir(
    out: str | Path, meta: dict[str, Any], words: Sequence[str], shard_records: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """`words.txt` and `manifest.json` into `out` (shards already under `out/shards`); the manifest."""
    from sea.labeling.text import words_sha256

    out = Path(out)
    (out / WORDS).write_text("".join(w + "\n" for w in words), encoding="utf-8")
    meta = {**meta, "words": {"file": WORDS, "sha256": words_sha256(words), "count": len(words)}}
    manifest = build_manifest(meta, shard_records)
    write_json(out / MANIFEST, manifest)
    return manifest


class LabelSet:
    """Labels of a folder written by the `label` stage: `get(image_id)` -> (ids int32 (N, n), scores fp16
    (N, n)); ids index `words`, -1 = empty slot. Shards are memory-mapped on first use."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise SeaError(f"{self.root}: no label manifest ({MANIFEST}); run the `label` stage first")
        self.manifest: dict[str, Any] = read_json(path)
        version = self.manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise SeaError(f"{path}: label format version {version}, this code reads {FORMAT_VERSION}")
        words_file = self.root / self.manifest["words"]["file"]
        self.words = [w for w in words_file.read_text(encoding="utf-8").split("\n") if w]
        if len(self.words) != self.manifest["words"]["count"]:
            raise SeaError(
                f"{words_file}: {len(self.words)} words, the manifest says {self.manifest['words']['count']}"
            )
        self.index: dict[str, list[int]] = self.manifest["index"]
        self._handles: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers: reopen shards in each process
        return {**self.__dict__, "_handles": {}}

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self.index

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.manifest["grid"])  # type: ignore[return-value]

    @property
    def top_n(self) -> int:
        return int(self.manifest["top_n"])

    def image_ids(self) -> list[str]:
        return list(self.index)

    def _handle(self, shard: int) -> Any:
        if shard not in self._handles:
            from safetensors import safe_open

            self._handles[shard] = safe_open(str(self.root / self.manifest["shards"][shard]["file"]), "pt")
        return self._handles[shard]

    def get(self, image_id: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids int32 (N, n), scores fp16 (N, n)) of one image; KeyError names the folder."""
        try:
            shard, offset = self.index[image_id]
        except KeyError:
            raise KeyError(f"image id {image_id!r} has no labels in {self.root}") from None
        h = self._handle(shard)
        return h.get_slice("ids")[offset], h.get_slice("scores")[offset]

    __getitem__ = get

    def get_many(self, image_ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked (B, N, n) labels of several images."""
        pairs = [self.get(i) for i in image_ids]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def words_of(self, ids: torch.Tensor) -> list[str | None]:
        """Words of a 1-D id tensor (None for empty slots)."""
        return [self.words[int(i)] if int(i) >= 0 else None for i in ids.reshape(-1)]


def load_labels(directory: str | Path) -> LabelSet:
    """Open a labels folder written by the `label` stage."""
    return LabelSet(directory)


def _manifest_of(manifest: dict[str, Any] | LabelSet | str | Path) -> tuple[dict[str, Any], str]:
    if isinstance(manifest, LabelSet):
        return manifest.manifest, str(manifest.root)
    if isinstance(manifest, (str, Path)):
        path = Path(manifest)
        path = path / MANIFEST if path.is_dir() else path
        if not path.is_file():
            raise SeaError(f"{path}: no label manifest; run the `label` stage first")
        return read_json(path), str(path)
    return manifest, "the label manifest"


def check_label_compatibility(manifest: dict[str, Any] | LabelSet | str | Path, vision_tower: Any) -> None:
    """Refuse labels made for another patch grid or another image preprocessing than `vision_tower`'s
    (patch indices would not correspond): SeaError naming both values. A different model name with the
    same geometry (e.g. transferred labels) is only logged."""
    m, where = _manifest_of(manifest)
    tower_grid = [int(x) for x in vision_tower.grid]
    label_grid = [int(x) for x in m.get("grid", [])]
    problems = []
    if label_grid != tower_grid:
        problems.append(f"patch grid: labels {label_grid}, vision tower {tower_grid}")
    theirs = m.get("preprocess") or {}
    ours = vision_tower.preprocess_signature()
    for key in GEOMETRY_KEYS:
        a, b = theirs.get(key), ours.get(key)
        if _norm(a) != _norm(b):
            problems.append(f"preprocessing '{key}': labels {a!r}, vision tower {b!r}")
    if problems:
        raise SeaError(
            f"labels in {where} (made with '{m.get('model')}') do not fit "
            f"vision tower '{vision_tower.name}': "
            + "; ".join(problems)
            + ". Re-run the `label` stage with this model.vision (or label.teacher for transferred labels)."
        )
    if theirs.get("model") != ours.get("model"):
        log.info(
            "labels in %s were made for model '%s' (labeler '%s'), the vision tower is '%s': same geometry",
            where,
            theirs.get("model"),
            m.get("model"),
            ours.get("model"),
        )


def _norm(value: Any) -> Any:
    """Compare lists and tuples alike, and floats to 1e-6."""
    if isinstance(value, (list, tuple)):
        return tuple(_norm(v) for v in value)
    if isinstance(value, float):
        return round(value, 6)
    return value
