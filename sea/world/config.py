"""The `data.world` config: validation with clear messages, and the known vocabulary (colours, shapes)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

# Colour words the renderer knows, with their RGB value. Object colours and background colours come
# from this table; a config word not in it is an error.
RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 100, 235),
    "yellow": (240, 220, 50),
    "purple": (150, 60, 200),
    "orange": (250, 140, 30),
    "white": (240, 240, 240),
    "pink": (250, 150, 190),
    "cyan": (60, 220, 230),
    "magenta": (230, 50, 200),
    "lime": (170, 240, 70),
    "teal": (20, 140, 140),
    "brown": (110, 75, 45),
    "gray": (110, 110, 110),
    "black": (20, 20, 20),
    "navy": (25, 30, 85),
    "beige": (225, 210, 170),
    "olive": (110, 120, 40),
}

# Shape words the renderer can draw (see sea.world.render.draw_shape).
KNOWN_SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "diamond",
    "pentagon",
    "hexagon",
)

# Nine coarse position words: a 3x3 grid over the image (row word + column word).
POSITION_WORDS: tuple[str, ...] = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)

COUNT_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)

REQUIRED_KEYS: tuple[str, ...] = (
    "image_size",
    "patch_size",
    "n_pretrain",
    "n_instruct",
    "n_eval",
    "shapes",
    "colors",
    "backgrounds",
    "sizes",
    "min_objects",
    "max_objects",
    "same_color_prob",
    "patch_coverage",
    "text_only_fraction",
    "max_turns",
    "mmbench_options",
    "corpus_sentences",
)
# Optional keys and their defaults (maximum per-channel deviation from the base colour, 0-255 scale).
OPTIONAL_DEFAULTS: dict[str, Any] = {"object_noise": 8, "background_noise": 16}
# Optional answer styles of the instruction turns (fractions; the rest are long answers).
STYLE_DEFAULTS: dict[str, float] = {"multiple_choice_fraction": 0.15, "short_answer_fraction": 0.45}


@dataclass(frozen=True)
class WorldConfig:
    """A validated `data.world` config."""

    image_size: int
    patch_size: int
    n_pretrain: int
    n_instruct: int
    n_eval: int
    shapes: tuple[str, ...]
    colors: tuple[str, ...]
    backgrounds: tuple[str, ...]
    sizes: dict[str, float]
    min_objects: int
    max_objects: int
    same_color_prob: float
    patch_coverage: float
    text_only_fraction: float
    max_turns: int
    mmbench_options: int
    corpus_sentences: int
    object_noise: int = 8
    background_noise: int = 16
    multiple_choice_fraction: float = 0.15
    short_answer_fraction: float = 0.45

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    def diameter(self, size: str) -> int:
        """Object diameter in pixels for a size word."""
        return int(round(self.sizes[size] * self.image_size))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("shapes", "colors", "backgrounds"):
            d[key] = list(d[key])
        return d


def _int(wcfg: dict, key: str, lo: int, hi: int | None = None) -> int:
    value = wcfg[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"data.world.{key} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"data.world.{key} must be {bound}, got {value}")
    return value


def _prob(wcfg: dict, key: str, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> float:
    value = wcfg[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"data.world.{key} must be a number, got {value!r}")
    value = float(value)
    bad = value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi)
    if bad:
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"data.world.{key} must be in {interval}, got {value}")
    return value


def _words(wcfg: dict, key: str, known: tuple[str, ...] | dict, what: str, min_len: int) -> tuple[str, ...]:
    value = wcfg[key]
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"data.world.{key} must be a list of {what} words, got {value!r}")
    words = tuple(str(w) for w in value)
    unknown = [w for w in words if w not in known]
    if unknown:
        raise ValueError(
            f"data.world.{key}: unknown {what} {', '.join(repr(w) for w in unknown)}; "
            f"known {what}s: {', '.join(known)}"
        )
    if len(set(words)) != len(words):
        raise ValueError(f"data.world.{key} has duplicates: {list(words)}")
    if len(words) < min_len:
        raise ValueError(f"data.world.{key} needs at least {min_len} {what}s, got {len(words)}")
    return words


def validate_world_config(wcfg: dict[str, Any]) -> WorldConfig:
    """Check a plain `data.world` dict and return it as a WorldConfig; ValueError names the bad key."""
    if not isinstance(wcfg, dict):
        raise ValueError(f"data.world must be a mapping, got {type(wcfg).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in wcfg]
    if missing:
        raise ValueError(f"data.world is missing key(s): {', '.join(missing)}")
    extra = sorted(set(wcfg) - set(REQUIRED_KEYS) - set(OPTIONAL_DEFAULTS) - set(STYLE_DEFAULTS))
    if extra:
        log.warning("data.world: ignoring unknown key(s) %s", ", ".join(extra))

    image_size = _int(wcfg, "image_size", 8)
    patch_size = _int(wcfg, "patch_size", 1)
    if image_size % patch_size != 0:
        raise ValueError(
            f"data.world.image_size ({image_size}) must be divisible by data.world.patch_size ({patch_size})"
        )
    shapes = _words(wcfg, "shapes", KNOWN_SHAPES, "shape", 1)
    colors = _words(wcfg, "colors", RGB, "color", 2)
    backgrounds = _words(wcfg, "backgrounds", RGB, "color", 1)
    clash = sorted(set(colors) & set(backgrounds))
    if clash:
        raise ValueError(
            f"data.world: colour(s) {clash} are both object colours and backgrounds; "
            "objects would be invisible"
        )

    sizes_raw = wcfg["sizes"]
    if not isinstance(sizes_raw, dict) or not sizes_raw:
        raise ValueError(
            f"data.world.sizes must be a non-empty mapping name -> diameter fraction, got {sizes_raw!r}"
        )
    sizes: dict[str, float] = {}
    for name, frac in sizes_raw.items():
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < float(frac) <= 0.9:
            raise ValueError(f"data.world.sizes.{name} must be a fraction in (0, 0.9], got {frac!r}")
        if round(float(frac) * image_size) < 4:
            raise ValueError(
                f"data.world.sizes.{name} = {frac} gives objects under 4 pixels on a {image_size}-pixel image"
            )
        sizes[str(name)] = float(frac)

    min_objects = _int(wcfg, "min_objects", 1)
    max_objects = _int(wcfg, "max_objects", 1, len(COUNT_WORDS) - 2)
    if min_objects > max_objects:
        raise ValueError(f"data.world.min_objects ({min_objects}) must be <= max_objects ({max_objects})")
    same_color_prob = _prob(wcfg, "same_color_prob", 0.0, 1.0)
    if same_color_prob > 0 and max_objects > len(shapes):
        raise ValueError(
            f"data.world.max_objects ({max_objects}) exceeds the number of shapes ({len(shapes)}): "
            "same-colour images need a distinct shape per object (lower max_objects or same_color_prob=0)"
        )
    if max_objects > len(shapes) * len(colors):
        raise ValueError(
            f"data.world.max_objects ({max_objects}) exceeds the number of distinct colour-shape pairs "
            f"({len(shapes) * len(colors)})"
        )
    noise = {}
    for key, default in OPTIONAL_DEFAULTS.items():
        noise[key] = _int({key: wcfg.get(key, default)}, key, 0, 64)

    styles = {k: _prob({k: wcfg.get(k, v)}, k, 0.0, 1.0) for k, v in STYLE_DEFAULTS.items()}
    if sum(styles.values()) > 1.0:
        raise ValueError(
            "data.world.multiple_choice_fraction + short_answer_fraction must be <= 1, got "
            f"{sum(styles.values())}"
        )
    return WorldConfig(
        image_size=image_size,
        patch_size=patch_size,
        n_pretrain=_int(wcfg, "n_pretrain", 1),
        n_instruct=_int(wcfg, "n_instruct", 1),
        n_eval=_int(wcfg, "n_eval", 1),
        shapes=shapes,
        colors=colors,
        backgrounds=backgrounds,
        sizes=sizes,
        min_objects=min_objects,
        max_objects=max_objects,
        same_color_prob=same_color_prob,
        patch_coverage=_prob(wcfg, "patch_coverage", 0.0, 1.0, lo_open=True),
        text_only_fraction=_prob(wcfg, "text_only_fraction", 0.0, 1.0, hi_open=True),
        max_turns=_int(wcfg, "max_turns", 1),
        mmbench_options=_int(wcfg, "mmbench_options", 2, len(POSITION_WORDS)),
        corpus_sentences=_int(wcfg, "corpus_sentences", 1),
        **noise,
        **styles,
    )
