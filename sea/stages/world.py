"""`world`: generate the embedded shapes world (images, masks, per-patch ground truth, LLaVA-format
captions and instructions, eval files in LLaVA's formats, an LM corpus) from a seed."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from sea.config import select
from sea.stages.base import Stage


def build(cfg: DictConfig, out: Path) -> dict:
    """The world for `data.source=world`; with other data only a note (so `dvc repro` runs unchanged)."""
    from sea.world.generate import generate_world

    if select(cfg, "data.source") != "world":
        (out / "NOT_USED.txt").write_text(f"data.source={select(cfg, 'data.source')}: no shapes world\n")
        return {"images": 0}
    return generate_world(select(cfg, "data.world"), int(cfg.seed), out)


STAGE = Stage(
    name="world",
    help="generate the synthetic shapes world (embedded default): images, per-patch truth, LLaVA-format data",
    params=("seed", "data.source", "data.world"),
    out="paths.world",
    build=build,
)
run = STAGE.run
