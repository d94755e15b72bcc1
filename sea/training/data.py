"""Training data: conversation datasets, the global-batch sampler and the collator.

- `ConversationDataset` tokenizes a sample with a conversation template (`sea.data.templates`) and loads
  its image with the vision tower's preprocessing (optionally padded to a square first, LLaVA's
  `image_aspect_ratio=pad`); with labels it adds the image's stored top-n labels and the uniform
  numbers SEA's sampling reads (`sea_loss.image_uniforms`).
- `GlobalBatchSampler` fixes the data order by optimizer step: step s of epoch e takes the next
  `global_batch` indices of a permutation seeded by (seed, e) and cuts them into micro-batches,
  micro-batch m of process r being chunk m * num_processes + r (accelerate's round-robin order). So
  the samples of a step do not depend on the number of processes, resuming at step s is exact, and two
  runs with the same seed (both arms) see the same batches in the same order. An incomplete last
  global batch of an epoch is dropped.
- `Collator` pads ids (right), labels (-100) and the attention mask, stacks images, and samples SEA's
  (patch, word) pairs on the CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from sea.data.llava import CLIP_MEAN, IGNORE_INDEX, expand_to_square, open_image, pad_fill
from sea.errors import SeaError
from sea.training.sea_loss import SeaSettings, image_uniforms, sample_pairs, window_table

log = logging.getLogger(__name__)

IMAGE_ASPECT_RATIOS = ("none", "pad")


# ------------------------------------------------------------------------------------------- labels


class LabelSource(Protocol):
    """Stored per-patch labels: `words` (the word list the ids index) and `get(image_id)` ->
    (ids int (N, n), -1 = empty slot; scores float (N, n)). `sea.labeling.storage.LabelSet` is one."""

    words: list[str]

    def get(self, image_id: str) -> tuple[torch.Tensor, torch.Tensor]: ...

    def __contains__(self, image_id: object) -> bool: ...


class InMemoryLabels:
    """A `LabelSource` from a dict (tests, benchmarks)."""

    def __init__(self, words: Sequence[str], labels: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.words = list(words)
        self.labels = dict(labels)

    def get(self, image_id: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.labels[image_id]

    def __contains__(self, image_id: object) -> bool:
        return image_id in self.labels

    def __len__(self) -> int:
        return len(self.labels)


# ------------------------------------------------------------------------------------------ dataset


class ConversationDataset(Dataset):
    """Tokenized conversations with their images (and SEA labels when `labels` is given).

    Items are addressed by (index, epoch) keys (the epoch keys SEA's random numbers); an int is epoch 0.
    """

    def __init__(
        self,
        samples: Sequence[Mapping[str, Any]],
        tokenizer: Any,
        template: str,
        image_folder: str | Path | None,
        preprocess: Any,
        *,
        image_aspect_ratio: str = "none",
        image_mean: Sequence[float] = CLIP_MEAN,
        labels: LabelSource | None = None,
        num_patches: int | None = None,
        seed: int = 0,
        missing_labels: str = "error",
    ) -> None:
        if image_aspect_ratio not in IMAGE_ASPECT_RATIOS:
            raise SeaError(
                f"image_aspect_ratio must be one of {IMAGE_ASPECT_RATIOS}, got {image_aspect_ratio!r}"
            )
        self.samples = list(samples)
        self.tokenizer = tokenizer
        self.template = template
        self.image_folder = Path(image_folder) if image_folder is not None else None
        self.preprocess = preprocess
        self.image_aspect_ratio = image_aspect_ratio
        self.fill = pad_fill(image_mean)
        self.labels = labels
        self.num_patches = num_patches
        self.seed = int(seed)
        self.missing_labels = missing_labels
        if labels is not None:
            if num_patches is None:
                raise SeaError("a dataset with labels needs num_patches")
            missing = [s["id"] for s in self.samples if s["id"] not in labels]
            if missing and missing_labels == "error":
                raise SeaError(
                    f"{len(missing)} of {len(self.samples)} training images have no stored labels (first: "
                    f"{missing[:3]}); re-run the `label` stage on all pretrain images, or set "
                    "align.sea.missing_labels=skip"
                )
            if missing:
                log.warning(
                    "%d of %d images have no labels: no SEA pairs for them", len(missing), len(self.samples)
                )

    def __len__(self) -> int:
        return len(self.samples)

    def load_image(self, relative: str) -> torch.Tensor:
        img = open_image(self.image_folder / relative if self.image_folder is not None else Path(relative))
        if self.image_aspect_ratio == "pad":
            img = expand_to_square(img, self.fill)  # type: ignore[arg-type]
        return self.preprocess(img)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        from sea.data.templates import encode

        index, epoch = (key, 0) if isinstance(key, int) else (int(key[0]), int(key[1]))
        sample = self.samples[index]
        has_image = bool(sample.get("image"))
        try:
            enc = encode(sample["conversations"], self.tokenizer, self.template, has_image)
        except ValueError as err:
            raise SeaError(f"sample {sample['id']!r}: {err}") from err
        item: dict[str, Any] = {
            "index": index,
            "input_ids": torch.tensor(enc.input_ids, dtype=torch.long),
            "labels": torch.tensor(enc.labels, dtype=torch.long),
            "image": self.load_image(sample["image"]) if has_image else None,
        }
        if self.labels is not None:
            n = int(self.num_patches)  # type: ignore[arg-type]
            if sample["id"] in self.labels:
                ids, scores = self.labels.get(sample["id"])
            else:
                ids = torch.full((n, 1), -1, dtype=torch.int32)
                scores = torch.zeros(n, 1)
            if ids.shape[0] != n:
                raise SeaError(
                    f"labels of image {sample['id']!r} cover {ids.shape[0]} patches, the tower has {n}"
                )
            item["label_ids"] = ids.to(torch.int32)
            item["label_scores"] = scores.float()
            item["uniforms"] = image_uniforms(self.seed, epoch, index, n)
        return item


# ------------------------------------------------------------------------------------------ sampler


@dataclass(frozen=True)
class BatchLayout:
    """How a global batch splits: global = per_device x accumulation x processes."""

    global_batch: int
    per_device: int
    num_processes: int

    def __post_init__(self) -> None:
        for key, value in (
            ("global_batch_size", self.global_batch),
            ("per_device_batch_size", self.per_device),
        ):
            if value < 1:
                raise SeaError(f"train.{key} must be a positive integer, got {value}")
        per_step = self.per_device * self.num_processes
        if self.global_batch % per_step:
            raise SeaError(
                f"global batch {self.global_batch} is not a multiple of per-device batch {self.per_device} x "
                f"{self.num_processes} processes; change train.global_batch_size or "
                "train.per_device_batch_size"
            )

    @property
    def accumulation(self) -> int:
        return self.global_batch // (self.per_device * self.num_processes)


class GlobalBatchSampler:
    """Yields this process's micro-batches of (index, epoch) keys, optimizer step by optimizer step,
    from `start_step` to `total_steps` (see the module docstring)."""

    def __init__(
        self,
        num_samples: int,
        layout: BatchLayout,
        rank: int,
        seed: int,
        total_steps: int,
        start_step: int = 0,
        shuffle: bool = True,
    ) -> None:
        self.num_samples = int(num_samples)
        self.layout = layout
        self.rank = int(rank)
        self.seed = int(seed)
        self.total_steps = int(total_steps)
        self.start_step = int(start_step)
        self.shuffle = shuffle
        self.steps_per_epoch = self.num_samples // layout.global_batch
        if self.steps_per_epoch < 1:
            raise SeaError(
                f"{self.num_samples} training samples are fewer than one global batch ({layout.global_batch})"
            )

    def permutation(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_samples, generator=g)

    def step_indices(self, step: int) -> list[int]:
        """The `global_batch` sample indices of optimizer step `step` (all processes together)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        g = self.layout.global_batch
        return self.permutation(epoch)[k * g : (k + 1) * g].tolist()

    def __len__(self) -> int:
        return (self.total_steps - self.start_step) * self.layout.accumulation

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        b, p = self.layout.per_device, self.layout.num_processes
        perm, perm_epoch = None, -1
        for step in range(self.start_step, self.total_steps):
            epoch, k = divmod(step, self.steps_per_epoch)
            if epoch != perm_epoch:
                perm, perm_epoch = self.permutation(epoch), epoch
            chunk = perm[k * self.layout.global_batch : (k + 1) * self.layout.global_batch].tolist()  # type: ignore[index]
            for m in range(self.layout.accumulation):
                j = m * p + self.rank
                yield [(i, epoch) for i in chunk[j * b : (j + 1) * b]]


# ----------------------------------------------------------------------------------------- collator


class Collator:
    """Pads a list of dataset items into a batch; samples SEA pairs when `sea` is given."""

    def __init__(
        self,
        pad_token_id: int,
        grid: Sequence[int] | None = None,
        sea: SeaSettings | None = None,
        word_ok: torch.Tensor | None = None,
    ) -> None:
        self.pad_token_id = int(pad_token_id)
        self.word_ok = word_ok.cpu() if word_ok is not None else None
        self.grid = tuple(grid) if grid is not None else None
        self.sea = sea if sea is not None and sea.enabled else None
        self.table = window_table(self.grid, self.sea.window) if self.sea and self.grid else None

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        width = max(int(it["input_ids"].numel()) for it in items)
        ids = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, it in enumerate(items):
            n = int(it["input_ids"].numel())
            ids[i, :n], labels[i, :n], mask[i, :n] = it["input_ids"], it["labels"], 1
        images = [it["image"] for it in items]
        batch: dict[str, Any] = {
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
            "input_ids": ids,
            "labels": labels,
            "attention_mask": mask,
            "images": torch.stack(images) if all(x is not None for x in images) else images,
        }
        if self.sea is not None:
            if any(x is None for x in images) or "label_ids" not in items[0]:
                raise SeaError("SEA pairs need an image and labels for every sample of the batch")
            top_n = max(int(it["label_ids"].shape[1]) for it in items)
            label_ids = torch.stack([_pad_last(it["label_ids"], top_n, -1) for it in items])
            scores = torch.stack([_pad_last(it["label_scores"], top_n, 0.0) for it in items])
            uniforms = torch.stack([it["uniforms"] for it in items])
            batch["sea_pairs"] = sample_pairs(
                label_ids,
                scores,
                uniforms,
                self.grid,
                self.sea,
                self.table,
                self.word_ok,  # type: ignore[arg-type]
            )
        return batch


def _pad_last(x: torch.Tensor, width: int, value: float) -> torch.Tensor:
    if x.shape[1] == width:
        return x
    return torch.cat([x, x.new_full((x.shape[0], width - x.shape[1]), value)], dim=1)


def move_to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors of a batch (SEA pairs included) on `device`, without blocking."""
    from sea.training.sea_loss import SeaPairs

    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, (torch.Tensor, SeaPairs)):
            out[key] = value.to(device, non_blocking=True)
        elif key == "images" and isinstance(value, list):
            out[key] = [v.to(device, non_blocking=True) if v is not None else None for v in value]
        else:
            out[key] = value
    return out
