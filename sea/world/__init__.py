"""The shapes world: a synthetic, deterministic world of coloured shapes with per-patch ground truth
(design.md section 5). Entry point: `generate_world`; per-patch truth: `patch_objects_from_mask`."""

from sea.world.generate import generate_world
from sea.world.render import patch_objects_from_mask

__all__ = ["generate_world", "patch_objects_from_mask"]
