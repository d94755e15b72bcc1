"""Tiny random models for the model tests (built offline; builders live in `sea.models.tiny`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from sea.data.llava import IGNORE_INDEX, IMAGE_TOKEN_INDEX


@pytest.fixture(scope="session")
def vision_cfg(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`model.vision` for a tiny random CLIP: image 32, patch 8, width 32, 2+1 layers, embed_dim 16."""
    from sea.models.tiny import tiny_vision_cfg

    return tiny_vision_cfg(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def tower(vision_cfg: dict):
    from sea.models.vision import VisionTower

    return VisionTower.from_config(vision_cfg)


@pytest.fixture(scope="session")
def llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LlamaForCausalLM + byte-level BPE tokenizer, saved with `save_pretrained`."""
    from sea.models.tiny import save_tiny_llm

    return save_tiny_llm(tmp_path_factory.mktemp("llm"), "llama")


@pytest.fixture
def make_mllm(tower, llm_dir: Path) -> Callable[..., object]:
    """A fresh tiny `SeaMLLM` (shares the frozen tower; new LLM and adapter each call)."""
    from sea.models.adapter import build_adapter
    from sea.models.llm import load_llm
    from sea.models.mllm import SeaMLLM

    def make(max_length: int = 64, adapter: str = "mlp2x_gelu", seed: int = 0) -> SeaMLLM:
        llm, tok = load_llm({"name_or_path": str(llm_dir), "max_length": max_length})
        torch.manual_seed(seed)
        proj = build_adapter(adapter, tower.hidden_size, llm.get_input_embeddings().embedding_dim)
        return SeaMLLM(tower, proj, llm, tok, adapter_type=adapter, max_length=max_length)

    return make


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 3, 32, 32, generator=g)


def _pad_batch(rows: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    labels = ids.masked_fill((mask == 0) | (ids == IMAGE_TOKEN_INDEX), IGNORE_INDEX)
    return ids, mask, labels


@pytest.fixture
def pad_batch() -> Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Right-padded (input_ids, attention_mask, labels) as a collator builds them; labels copy the ids
    except at the image placeholder and padding."""
    return _pad_batch
