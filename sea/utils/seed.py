"""One way to seed a process's global random generators."""

from __future__ import annotations


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (model initialisation, dropout draw from
    them). CPU kernels are deterministic for a fixed thread count; no other process-wide switch is
    flipped (stages may share a process)."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
