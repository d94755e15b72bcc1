"""What the patch-word loss costs per tiny-CLIP training step: the default world CLIP's step with
`backbones.clip.patch_word_loss` on (the default) and off, built side by side on the same world and
timed in alternation (on, off, on, off, ...) so that machine load hits both alike.

    python benchmarks/clip_patch_word_cost.py [--steps 20] [--world out/world]

Without --world it generates the `tiny` experiment's world in a temp folder (the default world's model
and batch size, fewer images). Prints the median seconds per step of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sea.backbones.clip_train import ClipSettings, clip_step, setup_clip, write_model_config
from sea.config import compose, select


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--world", type=Path, default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clip_cost_"))
    cfg = compose(["tracking=none", f"paths.root={tmp}"])
    world = args.world
    if world is None:
        from sea.world import generate_world

        tiny = compose(["experiment=tiny", "tracking=none", f"paths.root={tmp}"])
        world = tmp / "world"
        generate_world(select(tiny, "data.world"), 0, world)
    vcfg = select(cfg, "model.vision")
    name = write_model_config(vcfg, tmp / "clip")
    base = {**select(cfg, "backbones.clip"), "whitening_views": 64}
    runs = {
        on: setup_clip(world, vcfg, ClipSettings.from_config({**base, "patch_word_loss": w}), 0, name)
        for on, w in (("on", 1.0), ("off", 0.0))
    }
    times: dict[str, list[float]] = {"on": [], "off": []}
    for step in range(args.steps):
        for key, run in runs.items():
            t = time.perf_counter()
            clip_step(run, step)
            times[key].append(time.perf_counter() - t)
    on, off = (statistics.median(times[k][1:]) for k in ("on", "off"))
    print(
        f"patch-word loss on: {on:.3f} s/step, off: {off:.3f} s/step, "
        f"ratio on/off {on / off:.2f} ({args.steps} steps each)"
    )


if __name__ == "__main__":
    main()
