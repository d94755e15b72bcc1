"""Drawing: object masks with PIL (no antialiasing), images painted from the masks, per-patch ground truth.

The mask is drawn first; the image takes each object's colour exactly where the mask holds the object's
index, so image and mask always agree pixel for pixel.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

from sea.world.config import KNOWN_SHAPES, RGB, WorldConfig
from sea.world.scene import Layout, Scene, WorldObject, position_word

Point = tuple[float, float]


def _regular_polygon(cx: float, cy: float, r: float, sides: int, start_deg: float) -> list[Point]:
    return [
        (
            cx + r * math.cos(math.radians(start_deg + 360 * i / sides)),
            cy + r * math.sin(math.radians(start_deg + 360 * i / sides)),
        )
        for i in range(sides)
    ]


def _star(cx: float, cy: float, r: float, inner: float = 0.45) -> list[Point]:
    pts = []
    for i in range(10):
        rad = r if i % 2 == 0 else r * inner
        ang = math.radians(-90 + 36 * i)
        pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
    return pts


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, x0: int, y0: int, d: int, fill: int) -> None:
    """Draw `shape` filling the d x d box at (x0, y0) with the value `fill`."""
    x1, y1 = x0 + d - 1, y0 + d - 1
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (d - 1) / 2
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape == "square":
        inset = int(round(d * 0.08))
        draw.rectangle([x0 + inset, y0 + inset, x1 - inset, y1 - inset], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    elif shape == "star":
        draw.polygon(_star(cx, cy, r), fill=fill)
    elif shape == "cross":
        w = max(2, int(round(d / 3)))
        a = (d - w) // 2
        draw.rectangle([x0 + a, y0, x0 + a + w - 1, y1], fill=fill)
        draw.rectangle([x0, y0 + a, x1, y0 + a + w - 1], fill=fill)
    elif shape == "pentagon":
        draw.polygon(_regular_polygon(cx, cy, r, 5, -90), fill=fill)
    elif shape == "hexagon":
        draw.polygon(_regular_polygon(cx, cy, r, 6, 0), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; known shapes: {', '.join(KNOWN_SHAPES)}")


def draw_mask(layouts: list[Layout], image_size: int) -> np.ndarray:
    """uint8 mask: pixel value k for object k (1-based, in `layouts` order), 0 for background."""
    canvas = Image.new("L", (image_size, image_size), 0)
    draw = ImageDraw.Draw(canvas)
    for k, lay in enumerate(layouts, start=1):
        draw_shape(draw, lay.shape, lay.x0, lay.y0, lay.diameter, k)
    return np.asarray(canvas, dtype=np.uint8).copy()


def paint_image(
    mask: np.ndarray, background: str, colors: list[str], cfg: WorldConfig, rng: np.random.Generator
) -> np.ndarray:
    """RGB uint8 image: a textured background, object k painted in colors[k-1] where mask == k.

    Background pixels stay within cfg.background_noise of the background colour (a smooth gradient
    plus pixel noise); object pixels within cfg.object_noise of their colour (a per-object shift plus
    pixel noise).
    """
    s = mask.shape[0]
    bg_amp, obj_amp = cfg.background_noise, cfg.object_noise
    grad_amp, shift_amp = bg_amp // 2, obj_amp // 2
    # Base colour per pixel through a lookup table: row 0 background, row k object k (with its shift).
    lut = np.empty((len(colors) + 1, 3), dtype=np.int16)
    lut[0] = RGB[background]
    shifts = rng.integers(-shift_amp, shift_amp + 1, size=(len(colors), 3), dtype=np.int16)
    for k, color in enumerate(colors, start=1):
        lut[k] = np.asarray(RGB[color], dtype=np.int16) + shifts[k - 1]
    u = (np.arange(s) + 0.5) / s * 2 - 1  # -1..1 across the image
    gx, gy = rng.uniform(-1, 1, size=2)
    grad = np.rint(grad_amp * (gx * u[None, :] + gy * u[:, None]) / 2).astype(np.int16)
    bg_noise = rng.integers(-(bg_amp - grad_amp), bg_amp - grad_amp + 1, size=(s, s, 3), dtype=np.int16)
    obj_noise = rng.integers(-(obj_amp - shift_amp), obj_amp - shift_amp + 1, size=(s, s, 3), dtype=np.int16)
    noise = np.where((mask > 0)[:, :, None], obj_noise, bg_noise + grad[:, :, None])
    img = lut[mask] + noise
    return np.clip(img, 0, 255).astype(np.uint8)


def patch_objects_from_mask(mask: np.ndarray, patch_size: int, coverage: float) -> np.ndarray:
    """Per-patch object index (G x G ints, row-major; 0 = background).

    Patch (r, c) gets the object covering the largest share of its pixels, if that share is at least
    `coverage`; otherwise 0. Ties go to the lower index. This is the single definition of the world's
    per-patch ground truth.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    h, w = mask.shape
    if patch_size <= 0 or h % patch_size or w % patch_size:
        raise ValueError(f"mask shape {mask.shape} is not divisible by patch_size {patch_size}")
    gh, gw, area = h // patch_size, w // patch_size, patch_size * patch_size
    blocks = mask.reshape(gh, patch_size, gw, patch_size).transpose(0, 2, 1, 3).reshape(gh, gw, area)
    n_obj = int(mask.max())
    out = np.zeros((gh, gw), dtype=np.int64)
    if n_obj == 0:
        return out
    counts = np.stack([(blocks == k).sum(-1) for k in range(1, n_obj + 1)], axis=-1)
    best = counts.argmax(-1)
    best_count = np.take_along_axis(counts, best[..., None], -1)[..., 0]
    need = math.ceil(coverage * area - 1e-9)
    return np.where(best_count >= need, best + 1, 0).astype(np.int64)


def render_scene(
    cfg: WorldConfig,
    scene_id: str,
    split: str,
    background: str,
    layouts: list[Layout],
    rng: np.random.Generator,
    same_color: bool = False,
    dropped: int = 0,
) -> tuple[np.ndarray, np.ndarray, Scene]:
    """Draw the mask, paint the image, and return (image, mask, scene with per-patch truth)."""
    mask = draw_mask(layouts, cfg.image_size)
    image = paint_image(mask, background, [lay.color for lay in layouts], cfg, rng)
    objects = []
    for k, lay in enumerate(layouts, start=1):
        ys, xs = np.nonzero(mask == k)
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        objects.append(
            WorldObject(
                index=k,
                shape=lay.shape,
                color=lay.color,
                size=lay.size,
                center=(cx, cy),
                bbox=(x0, y0, x1, y1),
                position=position_word(cx, cy, cfg.image_size),
            )
        )
    grid = patch_objects_from_mask(mask, cfg.patch_size, cfg.patch_coverage)
    scene = Scene(
        id=scene_id,
        split=split,
        background=background,
        objects=tuple(objects),
        image_size=cfg.image_size,
        same_color=same_color,
        dropped=dropped,
        patch_objects=tuple(tuple(int(v) for v in row) for row in grid),
    )
    return image, mask, scene


def png_bytes(array: np.ndarray) -> bytes:
    """An RGB (H, W, 3) or grayscale (H, W) uint8 array as PNG bytes (PIL; deterministic)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"png_bytes needs an (H, W) or (H, W, 3) array, got shape {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
