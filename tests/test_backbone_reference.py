"""The backbone trainers give the weights they gave before `train_clip` was split into setup / step /
evaluation (and both trainers moved to `sea.training.optim`): a few steps at tiny size from seed 0,
compared with fingerprints recorded from the code before the change (same seed -> same weights)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sea.config import compose, select

# Recorded with the code before the refactor (commit fbe7394) on the tiny world of `experiment=tiny`.
# `weights`: sum over tensors (sorted by name) of <w, sin(1..n)>, in float64; `norm`: their L2 norm.
CLIP_REFERENCE = {
    "weights": 77.63965808055305,
    "norm": 160.4847412481038,
    "first_loss": 2.1030378341674805,
    "final_loss": 2.497140645980835,
    "zeroshot_object_acc": 0.06451612710952759,
}
LM_REFERENCE = {
    "weights": 14.786652905000796,
    "norm": 41.288428612743566,
    "first_loss": 7.726168155670166,
    "final_loss": 6.568861484527588,
    "val_loss": 6.5122175216674805,
}
CLIP_STEPS = {"steps": 3, "batch_size": 8, "whitening_views": 16, "eval_every": 2, "log_every": 1}
LM_STEPS = {"steps": 4, "seq_len": 32, "eval_every": 2}


def fingerprint(path: Path) -> dict[str, float]:
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(path))
    dot, sq = 0.0, 0.0
    for key in sorted(weights):
        w = weights[key].double().flatten()
        dot += float(w @ torch.sin(torch.arange(1, len(w) + 1, dtype=torch.float64)))
        sq += float(w @ w)
    return {"weights": dot, "norm": math.sqrt(sq)}


def assert_matches(got: dict[str, float], reference: dict[str, float], what: str) -> None:
    scale = reference["norm"]
    assert got["weights"] == pytest.approx(reference["weights"], abs=1e-6 * scale), f"{what}: weights differ"
    for key, value in reference.items():
        if key != "weights":
            assert got[key] == pytest.approx(value, rel=1e-5), f"{what}: {key} differs"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from sea.world import generate_world

    root = tmp_path_factory.mktemp("ref")
    # The settings the references were recorded with (the world's defaults changed after: average
    # pooling, the patch-word loss, the LM's chat-format lines).
    cfg = compose(
        [
            "experiment=tiny",
            "tracking=none",
            f"paths.root={root}",
            "model.vision.pool_type=tok",
            "backbones.clip.patch_word_loss=0.0",
            "backbones.llm.instruct_format=plain",
        ]
    )
    generate_world(select(cfg, "data.world"), 0, root / "world")
    return cfg, root


@pytest.mark.slow  # a minute on two loaded cores
def test_clip_training_gives_the_recorded_weights(tiny):
    from sea.backbones.clip_train import train_clip

    cfg, root = tiny
    clip = {**select(cfg, "backbones.clip"), **CLIP_STEPS}
    metrics = train_clip(root / "world", select(cfg, "model.vision"), clip, 0, root / "clip")
    got = {**metrics, **fingerprint(next((root / "clip").glob("*.safetensors")))}
    assert_matches(got, CLIP_REFERENCE, "clip")


@pytest.mark.slow
def test_lm_training_gives_the_recorded_weights(tiny):
    from sea.backbones.lm_train import train_lm

    cfg, root = tiny
    lm = {**select(cfg, "backbones.llm"), **LM_STEPS}
    metrics = train_lm(root / "world", select(cfg, "model.llm"), lm, 0, root / "llm")
    got = {**metrics, **fingerprint(root / "llm" / "model.safetensors")}
    assert_matches(got, LM_REFERENCE, "lm")


def test_the_fingerprint_sees_one_changed_weight(tmp_path):
    import torch
    from safetensors.torch import save_file

    w = {"a": torch.ones(3, 4), "b": torch.zeros(5)}
    save_file(w, str(tmp_path / "x.safetensors"))
    before = fingerprint(tmp_path / "x.safetensors")
    w["a"][2, 1] += 1e-3
    save_file(w, str(tmp_path / "x.safetensors"))
    with pytest.raises(AssertionError, match="weights differ"):
        assert_matches(fingerprint(tmp_path / "x.safetensors"), before, "x")
