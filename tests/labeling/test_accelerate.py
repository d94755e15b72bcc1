"""Two CPU processes under `accelerate launch` label the same as one process (slow tier).

`accelerate launch --cpu --num_processes 2` starts one process unless MPI is set up, so this launches
`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2` (torchrun underneath, gloo).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from sea.config import select
from sea.labeling.storage import load_labels
from sea.stages import label as label_stage

SCRIPT = textwrap.dedent(
    """
    import sys
    from sea.config import compose
    from sea.stages.label import STAGE
    STAGE.run(compose(sys.argv[1:]))
    """
)


@pytest.mark.slow
def test_accelerate_two_processes_match_one(label_cfg, world_root: Path, tmp_path: Path) -> None:
    overrides = ["label.quality.enabled=false", "label.batch_size=4"]
    single = label_cfg(*overrides)
    label_stage.STAGE.run(single)
    script = tmp_path / "run_label.py"
    script.write_text(SCRIPT)
    two = tmp_path / "two"
    args = [
        "experiment=tiny",
        f"paths.root={world_root}",
        f"paths.labels={two}",
        "tracking=none",
        "label.progress=false",
        *overrides,
    ]
    launcher = Path(sys.executable).parent / "accelerate"
    cmd = [
        str(launcher),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(script),
        *args,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a, b = load_labels(select(single, "paths.labels")), load_labels(two)
    assert b.manifest["world_size"] == 2 and len(b.manifest["shards"]) == 2
    assert sorted(a.image_ids()) == sorted(b.image_ids())
    for key in a.image_ids():
        ia, sa = a.get(key)
        ib, sb = b.get(key)
        assert torch.equal(ia, ib) and torch.equal(sa, sb), key
