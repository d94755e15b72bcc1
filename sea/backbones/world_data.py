"""What the backbone trainers read from a generated shapes world (`paths.world`).

The world stage writes, per split, `ground_truth/<split>.jsonl` (objects with shape, colour, size,
position; background; the image and mask paths), the images and the object masks (pixel value k =
object k, 0 = background), `pretrain.json` (captions), `instruct.json`, `corpus.txt` and `world.json`
(the vocabulary). This module turns them into training views: whole images, or one object
*isolated* (the other objects painted over with the image's own background pixels), each with a
caption built from the ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sea.errors import SeaError


@dataclass(frozen=True)
class WorldImage:
    """One image of the world with its ground truth (and, for pretrain images, the world's caption)."""

    id: str
    split: str
    image: Path
    mask: Path
    background: str
    objects: tuple[dict, ...]
    caption: str | None = None

    def colors(self, keep: tuple[int, ...] | None = None) -> tuple[str, ...]:
        return tuple(sorted(o["color"] for o in self.kept(keep)))

    def kept(self, keep: tuple[int, ...] | None) -> list[dict]:
        return list(self.objects) if keep is None else [o for o in self.objects if o["index"] in keep]


@dataclass
class WorldVocabulary:
    colors: list[str]
    shapes: list[str]
    backgrounds: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise SeaError(
            f"{path}: {what} not found. The backbones stage trains on the shapes world: run the `world` "
            "stage first (python -m sea world) or point paths.world at a generated world."
        )
    return path


def read_vocabulary(world: Path) -> WorldVocabulary:
    data = json.loads(_need(world / "world.json", "world summary").read_text(encoding="utf-8"))
    voc = data["vocabulary"]
    return WorldVocabulary(list(voc["colors"]), list(voc["shapes"]), list(voc["backgrounds"]), voc)


def read_split(world: Path, split: str) -> list[WorldImage]:
    """Images of one split (`pretrain`, `instruct`, `eval`) in file order, with the pretrain captions."""
    captions: dict[str, str] = {}
    if split == "pretrain":
        for sample in json.loads(_need(world / "pretrain.json", "pretrain.json").read_text(encoding="utf-8")):
            gpt = [t["value"] for t in sample["conversations"] if t.get("from") == "gpt"]
            if gpt:
                captions[sample["id"]] = gpt[0].strip()
    rows = []
    gt_path = _need(world / "ground_truth" / f"{split}.jsonl", f"ground truth of split '{split}'")
    with gt_path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            rows.append(
                WorldImage(
                    id=r["id"],
                    split=split,
                    image=world / r["image"],
                    mask=world / r["mask"],
                    background=r["background"],
                    objects=tuple(r["objects"]),
                    caption=captions.get(r["id"]),
                )
            )
    if not rows:
        raise SeaError(f"{gt_path}: no images in split '{split}'")
    return rows


def load_arrays(images: list[WorldImage]) -> tuple[np.ndarray, np.ndarray]:
    """All images (N, H, W, 3) and masks (N, H, W) as uint8 arrays."""
    from PIL import Image

    pix, masks = [], []
    for im in images:
        with Image.open(_need(im.image, "image")) as img:
            pix.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
        with Image.open(_need(im.mask, "object mask")) as m:
            masks.append(np.asarray(m, dtype=np.uint8))
    return np.stack(pix), np.stack(masks)


def isolate(
    image: np.ndarray, mask: np.ndarray, keep: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """A copy of `image` where only the objects in `keep` remain: every other object's pixels take
    values drawn from the image's own background pixels (same colour, noise and rough gradient)."""
    out = image.copy()
    drop = (mask != 0) & ~np.isin(mask, keep)
    if not drop.any():
        return out
    bg = image[mask == 0]
    if len(bg) == 0:  # an image fully covered by objects: nothing to paint with
        return out
    out[drop] = bg[rng.integers(0, len(bg), size=int(drop.sum()))]
    return out


def zoom(
    image: np.ndarray,
    bbox: list[int] | tuple[int, ...],
    rng: np.random.Generator,
    margin: tuple[float, float] = (1.3, 2.0),
) -> np.ndarray:
    """A square crop around an object's box (side = box side x a random margin, the box anywhere
    inside it), resized back to the image size: the object large and roughly centred."""
    from PIL import Image

    size = image.shape[0]
    x0, y0, x1, y1 = (int(v) for v in bbox)
    side = int(round(max(x1 - x0, y1 - y0) * rng.uniform(*margin)))
    side = max(max(x1 - x0, y1 - y0), min(size, side))
    lo_x, hi_x = max(0, x1 - side), min(x0, size - side)
    lo_y, hi_y = max(0, y1 - side), min(y0, size - side)
    cx = int(rng.integers(lo_x, hi_x + 1)) if hi_x >= lo_x else max(0, min(size - side, x0))
    cy = int(rng.integers(lo_y, hi_y + 1)) if hi_y >= lo_y else max(0, min(size - side, y0))
    crop = image[cy : cy + side, cx : cx + side]
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BILINEAR))


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def object_phrase(obj: dict, size: bool = False) -> str:
    words = [obj["size"]] if size and obj.get("size") else []
    words += [obj["color"], obj["shape"]]
    return " ".join([article(words[0]), *words])


def join_phrases(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def gt_caption(
    objects: list[dict],
    background: str,
    rng: np.random.Generator,
    size_prob: float = 0.0,
    background_prob: float = 0.5,
    swap: dict[int, dict] | None = None,
) -> str:
    """A caption naming every object's colour and shape, objects in random order; size words and the
    background phrase each with the given probability (so short prompts like 'a red circle.' stay
    in distribution). `swap` {position in `objects`: changed fields} builds a caption that differs
    only there (a hard negative); pass a generator in the same state to get the same form."""
    order = rng.permutation(len(objects))
    use_size = bool(rng.random() < size_prob)
    use_background = bool(rng.random() < background_prob)
    swap = swap or {}
    objs = [{**o, **swap.get(j, {})} for j, o in enumerate(objects)]
    text = join_phrases([object_phrase(objs[int(i)], use_size) for i in order])
    if use_background:
        text += f" on {article(background)} {background} background"
    return text + "."


def shape_swap(objects: list[dict], shapes: list[str], rng: np.random.Generator) -> dict[int, dict] | None:
    """One object's shape changed to another shape such that the set of objects really changes, or None."""
    content = sorted((o["color"], o["shape"]) for o in objects)
    for j in rng.permutation(len(objects)):
        j = int(j)
        for new in rng.permutation(shapes):
            new = str(new)
            if new == objects[j]["shape"]:
                continue
            changed = sorted((o["color"], new if i == j else o["shape"]) for i, o in enumerate(objects))
            if changed != content:
                return {j: {"shape": new}}
    return None


def canonical_caption(objects: list[dict], background: str | None = None) -> str:
    """The deterministic caption of a set of objects (sorted by colour, then shape)."""
    objs = sorted(objects, key=lambda o: (o["color"], o["shape"]))
    text = join_phrases([object_phrase(o) for o in objs])
    return text + (f" on {article(background)} {background} background." if background else ".")
