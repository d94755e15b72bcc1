"""Fixtures for the evaluation tests: a tiny shapes world and a tiny random SeaMLLM saved to disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

N_EVAL = 8  # eval images in the test world (2 GQA, 6 POPE, 8 MME and 4 MMBench rows per image)


@pytest.fixture(scope="session")
def world_cfg(tmp_path_factory: pytest.TempPathFactory):
    """The tiny composition rooted in a temp folder, with the world generated (N_EVAL eval images)."""
    from sea.config import compose, select
    from sea.world.generate import generate_world

    root = tmp_path_factory.mktemp("evalroot")
    cfg = compose(["experiment=tiny", f"paths.root={root}", "tracking=none", f"data.world.n_eval={N_EVAL}"])
    generate_world(select(cfg, "data.world"), int(cfg.seed), Path(cfg.paths.world))
    return cfg


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SeaMLLM (Llama-style tokenizer, vicuna_v1 template) saved with save_pretrained."""
    from sea.models.tiny import build_tiny_mllm

    root = tmp_path_factory.mktemp("evalmodel")
    model = build_tiny_mllm(root / "parts", max_length=256)
    return model.save_pretrained(root / "model")


@pytest.fixture(scope="session")
def model(model_dir: Path):
    from sea.models.mllm import SeaMLLM

    return SeaMLLM.load(model_dir).eval()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
