"""Fixtures for the labeling tests: a tiny random CLIP, and a small shapes world with a prepared
manifest and word list (written directly, without the `prepare` stage) plus a tiny CLIP where
`model.vision` reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

CLIP_SIZES = dict(width=32, layers=2, heads=2, embed_dim=16, text_width=32, text_layers=1, context_length=16)
N_PRETRAIN = 12
EXTRA_WORDS = ["background", "the", "image", "picture", "object", "shape", "colour", "left", "right"]


@pytest.fixture(scope="session")
def tower(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random CLIP: image 32, patch 8 (4x4 grid), embed_dim 16."""
    from sea.models.tiny import tiny_vision_cfg
    from sea.models.vision import VisionTower

    return VisionTower.from_config(tiny_vision_cfg(tmp_path_factory.mktemp("clip"), **CLIP_SIZES))


@pytest.fixture(scope="session")
def world_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`paths.root` with a world, `prepared/` (manifest + word list) and a random tiny-clip-vit."""
    from omegaconf import OmegaConf

    from sea.config import compose
    from sea.models.tiny import write_tiny_open_clip
    from sea.world import generate_world

    root = tmp_path_factory.mktemp("labroot")
    cfg = compose(["experiment=tiny", f"paths.root={root}", "tracking=none"])
    wcfg = OmegaConf.to_container(cfg.data.world, resolve=True)
    wcfg.update(n_pretrain=N_PRETRAIN, n_instruct=2, n_eval=2, corpus_sentences=10)
    generate_world(wcfg, 0, root / "world")
    samples = json.loads((root / "world" / "pretrain.json").read_text())
    manifests = root / "prepared" / "manifests"
    manifests.mkdir(parents=True)
    with (manifests / "pretrain.jsonl").open("w") as f:
        for i, s in enumerate(samples):
            f.write(json.dumps({"id": s["id"], "image": s["image"], "index": i}) + "\n")
    vocab = json.loads((root / "world" / "world.json").read_text())["vocabulary"]
    words = list(dict.fromkeys([*vocab["colors"], *vocab["shapes"], *vocab["backgrounds"], *EXTRA_WORDS]))
    (root / "prepared" / "wordlist.txt").write_text("".join(w + "\n" for w in words))
    write_tiny_open_clip(
        root / "backbones" / "clip", name="tiny-clip-vit", image_size=64, patch_size=8, **CLIP_SIZES
    )
    return root


@pytest.fixture
def label_cfg(world_root: Path, tmp_path: Path):
    """A composed config whose labels go to a fresh folder; extra overrides as arguments."""
    from sea.config import compose

    def make(*overrides: str):
        return compose(
            [
                "experiment=tiny",
                f"paths.root={world_root}",
                f"paths.labels={tmp_path / 'labels'}",
                "tracking=none",
                "label.progress=false",
                "label.quality.label_maps=2",
                *overrides,
            ]
        )

    return make


@pytest.fixture(scope="session")
def clip_sizes() -> dict:
    return dict(CLIP_SIZES)


@pytest.fixture(scope="session")
def n_pretrain() -> int:
    return N_PRETRAIN


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
