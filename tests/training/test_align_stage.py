"""The `align` stage on the tiny world: both arms, same batches, outputs, resume after a crash, stale
checkpoints refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sea.errors import SeaError


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def adapter_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


class CrashAfterCheckpoint(RuntimeError):
    pass


def crash_after(monkeypatch: pytest.MonkeyPatch, arm: str, step: int) -> None:
    """The first checkpoint at `step` of `arm` is written, then the process 'dies'."""
    from sea.training.checkpoint import CheckpointManager

    original = CheckpointManager.save
    fired = []

    def save(self, accelerator, at):  # noqa: ANN001
        path = original(self, accelerator, at)
        if at == step and self.directory.parent.name == arm and not fired:
            fired.append(at)
            raise CrashAfterCheckpoint(f"killed after checkpoint {at}")
        return path

    monkeypatch.setattr(CheckpointManager, "save", save)


def test_align_trains_both_arms_on_the_same_batches(stage_cfg, monkeypatch: pytest.MonkeyPatch):
    import sea.training.loop as loop
    from sea.models.adapter import KEY_PREFIX, load_adapter
    from sea.stages.align import STAGE

    seen: list[list[int]] = []
    original = loop.move_to
    monkeypatch.setattr(
        loop, "move_to", lambda batch, device: seen.append(batch["index"].tolist()) or original(batch, device)
    )

    cfg = stage_cfg()
    metrics = {arm: STAGE.run(cfg, arm) for arm in ("sea", "baseline")}
    out = Path(cfg.paths.align) / "seed0"
    assert len(seen) == 2 * 4 * 2  # 2 arms x 4 steps x 2 micro-batches
    assert seen[:8] == seen[8:], "both arms see the same batches in the same order"
    assert sorted(i for b in seen[:8] for i in b) == list(range(16)), "one epoch: every sample once"

    for arm in ("sea", "baseline"):
        state = adapter_state(out / arm / "adapter.safetensors")
        assert state and all(k.startswith(KEY_PREFIX) for k in state)
        assert load_adapter(out / arm / "adapter.safetensors") is not None
        assert [r["step"] for r in read_log(out / arm / "train_log.jsonl")] == [1, 2, 3, 4]
        assert metrics[arm]["steps"] == 4
    sea_log, base_log = (
        read_log(out / "sea" / "train_log.jsonl"),
        read_log(out / "baseline" / "train_log.jsonl"),
    )
    assert sea_log[0]["loss_lm"] == pytest.approx(base_log[0]["loss_lm"], rel=1e-6), (
        "same init, same first batch"
    )
    assert "loss_sea" in sea_log[0] and "loss_sea" not in base_log[0]
    assert sea_log[0]["loss"] == pytest.approx(sea_log[0]["loss_lm"] + sea_log[0]["loss_sea"], rel=1e-5)
    assert sea_log[0]["sea/pairs"] > 0 and sea_log[0]["lr"] == 0.0  # HF warmup starts at lr 0
    assert not torch.equal(
        *(
            adapter_state(out / a / "adapter.safetensors")["mm_projector.0.weight"]
            for a in ("sea", "baseline")
        )
    )
    assert not Path(cfg.align.checkpoint.dir).exists(), "checkpoints removed after success"
    assert STAGE.run(cfg, "sea") == metrics["sea"], "finished: skipped"


def test_resume_after_a_crash_equals_an_unbroken_run(
    stage_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from sea.stages.align import STAGE

    unbroken = stage_cfg(root=tmp_path / "a")
    STAGE.run(unbroken, "sea")

    cfg = stage_cfg(root=tmp_path / "b")
    with monkeypatch.context() as m:
        crash_after(m, "sea", 2)
        with pytest.raises(CrashAfterCheckpoint):
            STAGE.run(cfg, "sea")
    ckpt = Path(cfg.align.checkpoint.dir) / "seed0" / "sea" / "state"
    assert (ckpt / "step_00000002").is_dir() and not (Path(cfg.paths.align) / "seed0" / "sea").exists()

    # a config change that makes the checkpoint stale is refused...
    with pytest.raises(SeaError, match=r"changed: align\.train\.lr\).*align\.checkpoint\.restart=true"):
        STAGE.run(stage_cfg("align.train.lr=0.5", root=tmp_path / "b"), "sea")
    assert (ckpt / "step_00000002").is_dir()

    # ...and the rerun with the same config resumes at step 2 and ends where the unbroken run ended
    metrics = STAGE.run(cfg, "sea")
    assert metrics["resumed_from"] == 2
    a = adapter_state(Path(unbroken.paths.align) / "seed0" / "sea" / "adapter.safetensors")
    b = adapter_state(Path(cfg.paths.align) / "seed0" / "sea" / "adapter.safetensors")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-7)
    log_a = read_log(Path(unbroken.paths.align) / "seed0" / "sea" / "train_log.jsonl")
    log_b = read_log(Path(cfg.paths.align) / "seed0" / "sea" / "train_log.jsonl")
    assert [r["step"] for r in log_b] == [1, 2, 3, 4]
    assert [r["loss"] for r in log_b] == pytest.approx([r["loss"] for r in log_a], rel=1e-6)


def test_restart_discards_a_stale_checkpoint(stage_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from sea.stages.align import STAGE

    cfg = stage_cfg("align.train.max_steps=3", root=tmp_path / "c")
    with monkeypatch.context() as m:
        crash_after(m, "baseline", 2)
        with pytest.raises(CrashAfterCheckpoint):
            STAGE.run(cfg, "baseline")
    changed = stage_cfg(
        "align.train.max_steps=3",
        "align.train.warmup_steps=0",
        "align.checkpoint.restart=true",
        root=tmp_path / "c",
    )
    metrics = STAGE.run(changed, "baseline")
    assert metrics["resumed_from"] == 0 and metrics["steps"] == 3


def test_align_refuses_labels_for_another_grid(stage_cfg, tiny_world, tmp_path: Path):
    import shutil

    from sea.stages.align import STAGE
    from sea.utils.io import read_json, write_json

    labels = tmp_path / "labels"
    shutil.copytree(tiny_world["labels"], labels)
    manifest = read_json(labels / "manifest.json")
    manifest["grid"] = [5, 5]
    write_json(labels / "manifest.json", manifest)
    with pytest.raises(SeaError, match="patch grid"):
        STAGE.run(stage_cfg(f"align.labels={labels}"), "sea")


def test_diagnostics_during_stage_1_are_logged_as_curves_without_changing_training(
    stage_cfg, tiny_world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from sea.stages.align import STAGE

    class Recorder:
        def __init__(self) -> None:
            self.rows: list[tuple[int | None, dict]] = []

        def log_metrics(self, metrics, step=None) -> None:  # noqa: ANN001
            self.rows.append((step, dict(metrics)))

        def __getattr__(self, name: str):  # other tracker calls: no-ops
            return lambda *a, **k: None

    recorder = Recorder()
    monkeypatch.setattr("sea.tracking.current", lambda: recorder)
    probe = (
        "align.diagnostics.every=2",
        "align.diagnostics.max_images=4",
        "eval.diagnostics.ground_truth=null",
        f"eval.diagnostics.captions={tiny_world['data'] / 'pretrain.json'}",
        f"eval.diagnostics.image_folder={tiny_world['data']}",
        "eval.diagnostics.trained=[]",
    )
    STAGE.run(stage_cfg(*probe, root=tmp_path / "probe"), "sea")
    curves = [(step, m) for step, m in recorder.rows if any(k.startswith("align_diag/") for k in m)]
    assert [step for step, _ in curves] == [2, 4]
    first, last = curves[0][1], curves[1][1]
    assert {"align_diag/modality_gap", "align_diag/tacs", "align_diag/nearest_word/mean_cosine"} <= set(first)
    assert first["align_diag/modality_gap"] != last["align_diag/modality_gap"]  # the adapter trained
    STAGE.run(stage_cfg(root=tmp_path / "plain"), "sea")
    with_probe, without = (
        adapter_state(tmp_path / r / "align" / "seed0" / "sea" / "adapter.safetensors")
        for r in ("probe", "plain")
    )
    assert all(torch.equal(with_probe[k], without[k]) for k in without), "the probe does not change training"
