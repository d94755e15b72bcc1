"""Sampler, collator, datasets, schedule, parameter groups, checkpoint manager."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sea.data.llava import load_samples
from sea.errors import SeaError
from sea.training.data import BatchLayout, Collator, GlobalBatchSampler
from sea.training.sea_loss import SeaSettings, image_uniforms


def micro_batches(n: int, layout: BatchLayout, rank: int, steps: int, start: int = 0) -> list[list[int]]:
    sampler = GlobalBatchSampler(n, layout, rank, seed=3, total_steps=steps, start_step=start)
    return [[i for i, _ in mb] for mb in sampler]


def test_global_batches_do_not_depend_on_the_number_of_processes():
    n, steps = 50, 6  # 3 steps per epoch of 16, 2 samples dropped per epoch, 2 epochs
    one = micro_batches(n, BatchLayout(16, 2, 1), 0, steps)  # accumulation 8
    ranks = [micro_batches(n, BatchLayout(16, 2, 4), r, steps) for r in range(4)]  # accumulation 2
    assert len(one) == steps * 8 and all(len(r) == steps * 2 for r in ranks)
    for s in range(steps):
        merged = [ranks[j % 4][s * 2 + j // 4] for j in range(8)]  # micro m of rank r = chunk m * P + r
        assert merged == one[s * 8 : (s + 1) * 8]
    epoch0 = sorted(i for mb in one[:24] for i in mb)
    assert len(set(epoch0)) == 48, "each sample at most once per epoch"
    assert one[:24] != one[24:], "a new order every epoch"


def test_resume_mid_run_continues_the_same_order():
    layout = BatchLayout(8, 2, 2)
    full = micro_batches(40, layout, 1, 5)
    assert micro_batches(40, layout, 1, 5, start=3) == full[3 * 2 :]


def test_batch_layout_checks_divisibility():
    assert BatchLayout(256, 32, 4).accumulation == 2
    with pytest.raises(SeaError, match="not a multiple"):
        BatchLayout(256, 24, 4)
    with pytest.raises(SeaError, match="fewer than one global batch"):
        GlobalBatchSampler(10, BatchLayout(16, 2, 1), 0, 0, 1)


def test_collator_pads_and_samples_pairs():
    n = 16
    items = []
    for i, length in enumerate((3, 5)):
        ids = torch.randint(0, 6, (n, 2), dtype=torch.int32)
        items.append(
            {
                "index": i,
                "input_ids": torch.arange(length),
                "labels": torch.arange(length),
                "image": torch.zeros(3, 8, 8),
                "label_ids": ids,
                "label_scores": torch.rand(n, 2),
                "uniforms": image_uniforms(0, 0, i, n),
            }
        )
    batch = Collator(pad_token_id=99, grid=(4, 4), sea=SeaSettings())(items)
    assert batch["input_ids"][0].tolist() == [0, 1, 2, 99, 99]
    assert batch["labels"][0].tolist() == [0, 1, 2, -100, -100]
    assert batch["attention_mask"].sum().item() == 8
    assert batch["images"].shape == (2, 3, 8, 8)
    pairs = batch["sea_pairs"]
    assert 0 < len(pairs) <= 6 and len(set(pairs.words.tolist())) == len(pairs)
    assert "sea_pairs" not in Collator(pad_token_id=0)([{**it, "image": None} for it in items])


def test_load_samples_follows_the_manifest_and_catches_a_changed_file(tmp_path: Path):
    data = [{"id": f"s{i}", "image": f"{i}.png", "conversations": []} for i in range(4)]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    rows = [{"id": "s3", "index": 3}, {"id": "s1", "index": 1}]
    assert [s["id"] for s in load_samples(path, rows)] == ["s3", "s1"]
    with pytest.raises(SeaError, match="changed after `prepare`"):
        load_samples(path, [{"id": "s2", "index": 3}])


def test_schedule_matches_hf_cosine_with_warmup():
    from transformers import get_cosine_schedule_with_warmup

    from sea.training.optim import lr_lambda, warmup_steps_for

    total = 37
    warmup = warmup_steps_for(total, 0.03)
    assert warmup == 2
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    hf = get_cosine_schedule_with_warmup(opt, warmup, total)
    ours = lr_lambda(total, warmup, "cosine")
    for step in range(total):
        assert ours(step) == pytest.approx(hf.get_last_lr()[0], abs=1e-12)
        opt.step()
        hf.step()
    assert lr_lambda(10, 0, "cosine", 0.1)(10) == pytest.approx(0.1)


def test_param_groups_split_decay_and_skip_frozen():
    from sea.training.optim import ParamGroupSpec, param_groups

    a, b = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
    b.weight.requires_grad_(False)
    scale = torch.nn.Parameter(torch.zeros(()))
    groups = param_groups(
        [ParamGroupSpec("a", a), ParamGroupSpec("b", b, lr=0.5), ParamGroupSpec("s", [scale])], 0.1, 0.01
    )
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"a", "a/no_decay", "b/no_decay", "s/no_decay"}
    assert by_name["a"]["weight_decay"] == 0.01 and by_name["a/no_decay"]["weight_decay"] == 0.0
    assert by_name["b/no_decay"]["lr"] == 0.5 and by_name["s/no_decay"]["params"] == [scale]
    with pytest.raises(SeaError, match="nothing to train"):
        param_groups([ParamGroupSpec("b", torch.nn.Linear(2, 2).requires_grad_(False))], 0.1, 0.0)


def test_checkpoint_manager_detects_stale_config_and_restarts(tmp_path: Path):
    from sea.training.checkpoint import CheckpointManager
    from sea.utils.io import write_json

    fp = {"train": {"lr": 1e-3, "batch": 8}, "seed": 0}
    mgr = CheckpointManager(tmp_path / "ck", fp, every=2, keep=2)
    assert mgr.check() is None
    (tmp_path / "ck" / "step_00000002").mkdir(parents=True)
    (tmp_path / "ck" / ".step_00000004.tmp").mkdir()  # an interrupted save is not a checkpoint
    write_json(tmp_path / "ck" / "checkpoint.json", {"config_hash": mgr.hash, "fingerprint": mgr.fingerprint})
    assert mgr.check() == tmp_path / "ck" / "step_00000002"
    stale = CheckpointManager(tmp_path / "ck", {**fp, "train": {"lr": 2e-3, "batch": 8}}, every=2)
    with pytest.raises(SeaError, match=r"changed: train\.lr\).*checkpoint\.restart=true"):
        stale.check()
    restart = CheckpointManager(tmp_path / "ck", fp, every=2, restart=True)
    assert restart.check() is None and not (tmp_path / "ck").exists()
    assert mgr.due(2, 10) and not mgr.due(3, 10) and not mgr.due(10, 10)
