"""Runs the `align` stage (one arm, one optimizer step) and saves the first step's gradients and logged
metrics; launched by `test_ddp.py` alone or under `accelerate launch` (not a test module itself).

    python tests/training/ddp_worker.py SPEC.json      SPEC: {"overrides": [...], "out": "file.pt"}
"""

from __future__ import annotations

import json
import os
import sys

import torch


def main(spec_path: str) -> None:
    from sea.config import compose

    spec = json.loads(open(spec_path, encoding="utf-8").read())
    cfg = compose(spec["overrides"])

    import sea.training.loop as loop

    record: dict = {}

    def before_optimizer_step(model, state) -> None:  # noqa: ANN001
        if state.step == 0:
            inner = getattr(model, "module", model)
            record["grads"] = {
                n: p.grad.detach().clone() for n, p in inner.named_parameters() if p.requires_grad
            }

    def after_step(state, row) -> None:  # noqa: ANN001
        if state.step == 1:
            record["row"] = dict(row)

    original = loop.train

    def train(*args, **kwargs):  # noqa: ANN002, ANN003
        kwargs["hooks"] = loop.TrainHooks(before_optimizer_step, after_step)
        return original(*args, **kwargs)

    loop.train = train

    from sea.training.checkpoint import CheckpointManager

    save = CheckpointManager.save

    def save_and_record(self, accelerator, step):  # noqa: ANN001
        path = save(self, accelerator, step)
        record["checkpointed"] = sorted(p.name for p in path.iterdir()) if accelerator.is_main_process else []
        return path

    CheckpointManager.save = save_and_record
    from sea.stages.align import STAGE

    STAGE.run(cfg, "sea")
    if int(os.environ.get("RANK", "0")) == 0:
        record["world_size"] = int(os.environ.get("WORLD_SIZE", "1"))
        torch.save(record, spec["out"])


if __name__ == "__main__":
    main(sys.argv[1])
