"""Scenes: which objects an image holds (shape, colour, size, place), sampled from a seeded generator."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sea.world.config import POSITION_WORDS, WorldConfig

# How often to re-draw one object's place before starting the layout over, and how many layouts to
# try before dropping the objects that do not fit.
PLACEMENT_TRIES = 40
LAYOUT_RESTARTS = 10
# Minimum empty pixels between two objects' boxes, so masks never touch.
GAP = 2


@dataclass(frozen=True)
class WorldObject:
    """One drawn object. `bbox` is the tight pixel box [x0, y0, x1, y1) of its mask; `center` its middle."""

    index: int
    shape: str
    color: str
    size: str
    center: tuple[float, float]
    bbox: tuple[int, int, int, int]
    position: str

    @property
    def phrase(self) -> str:
        """'<colour> <shape>', how POPE-style questions name an object."""
        return f"{self.color} {self.shape}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "shape": self.shape,
            "color": self.color,
            "size": self.size,
            "center": list(self.center),
            "bbox": list(self.bbox),
            "position": self.position,
        }


@dataclass(frozen=True)
class Layout:
    """An object before drawing: its placement box (x0, y0, diameter)."""

    shape: str
    color: str
    size: str
    x0: int
    y0: int
    diameter: int


@dataclass(frozen=True)
class Scene:
    """Everything known about one image."""

    id: str
    split: str
    background: str
    objects: tuple[WorldObject, ...]
    image_size: int
    same_color: bool = False
    dropped: int = 0
    patch_objects: tuple[tuple[int, ...], ...] = field(default=(), repr=False)

    def shape_count(self) -> Counter:
        return Counter(o.shape for o in self.objects)

    def color_count(self) -> Counter:
        return Counter(o.color for o in self.objects)

    def has(self, color: str, shape: str) -> bool:
        return any(o.color == color and o.shape == shape for o in self.objects)

    def pairs(self) -> set[tuple[str, str]]:
        return {(o.color, o.shape) for o in self.objects}


def position_word(cx: float, cy: float, image_size: int) -> str:
    """The 3x3-grid word ('top left', 'center', ...) of a point."""
    third = image_size / 3
    col = 0 if cx < third else (2 if cx >= 2 * third else 1)
    row = 0 if cy < third else (2 if cy >= 2 * third else 1)
    return POSITION_WORDS[row * 3 + col]


def position_is_clear(cx: float, cy: float, image_size: int, margin: float | None = None) -> bool:
    """True when the point is at least `margin` pixels from the 3x3 grid lines (no doubt about its word)."""
    margin = 0.04 * image_size if margin is None else margin
    lines = (image_size / 3, 2 * image_size / 3)
    return all(abs(v - line) >= margin for v in (cx, cy) for line in lines)


def _free(x0: np.ndarray, y0: np.ndarray, d: int, placed: list[Layout]) -> np.ndarray:
    """Which candidate boxes (x0[i], y0[i], d) keep at least GAP pixels from every placed box."""
    free = np.ones(len(x0), dtype=bool)
    for p in placed:
        free &= ~(
            (x0 < p.x0 + p.diameter + GAP)
            & (p.x0 < x0 + d + GAP)
            & (y0 < p.y0 + p.diameter + GAP)
            & (p.y0 < y0 + d + GAP)
        )
    return free


def sample_layout(cfg: WorldConfig, rng: np.random.Generator) -> tuple[str, list[Layout], bool, int]:
    """Draw background, objects and non-overlapping places.

    Returns (background, layouts, same_color, dropped).

    When no layout out of LAYOUT_RESTARTS fits every object, the best one is kept and the objects it
    could not place are dropped (and counted).
    """
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    same_color = bool(rng.random() < cfg.same_color_prob) and n >= 2
    if same_color:
        color = cfg.colors[int(rng.integers(len(cfg.colors)))]
        shape_ids = rng.choice(len(cfg.shapes), size=n, replace=False)
        pairs = [(color, cfg.shapes[int(s)]) for s in shape_ids]
    else:
        flat = rng.choice(len(cfg.colors) * len(cfg.shapes), size=n, replace=False)
        pairs = [(cfg.colors[int(f) // len(cfg.shapes)], cfg.shapes[int(f) % len(cfg.shapes)]) for f in flat]
    background = cfg.backgrounds[int(rng.integers(len(cfg.backgrounds)))]
    size_names = sorted(cfg.sizes)
    sizes = [size_names[int(i)] for i in rng.integers(len(size_names), size=n)]
    # Largest first: they are the hardest to fit.
    order = sorted(range(n), key=lambda k: -cfg.sizes[sizes[k]])
    pairs, sizes = [pairs[k] for k in order], [sizes[k] for k in order]

    best: list[Layout] = []
    for _ in range(LAYOUT_RESTARTS):
        placed = _place(cfg, pairs, sizes, rng)
        if len(placed) > len(best):
            best = placed
        if len(best) == n:
            break
    same_color = same_color and len(best) >= 2
    return background, best, same_color, n - len(best)


def _place(
    cfg: WorldConfig, pairs: list[tuple[str, str]], sizes: list[str], rng: np.random.Generator
) -> list[Layout]:
    """Place objects one by one at the first free one of PLACEMENT_TRIES random spots; objects without
    a free spot are left out."""
    placed: list[Layout] = []
    for (color, shape), size in zip(pairs, sizes, strict=True):
        d = cfg.diameter(size)
        xy = rng.integers(0, cfg.image_size - d + 1, size=(PLACEMENT_TRIES, 2))
        free = np.flatnonzero(_free(xy[:, 0], xy[:, 1], d, placed))
        if len(free):
            x0, y0 = (int(v) for v in xy[free[0]])
            placed.append(Layout(shape, color, size, x0, y0, d))
    return placed
