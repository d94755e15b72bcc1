"""Models: the frozen vision towers (open_clip CLIP/SigLIP, timm DINOv2), the adapter registry, HF
causal-LM loading and the LLaVA-style wrapper `SeaMLLM`.

Names are imported lazily, so importing this package (for LLaVA's token constants, kept in
`sea.data.llava`) does not pay for torch, open_clip or transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

from sea.data.llava import IGNORE_INDEX, IMAGE_TOKEN, IMAGE_TOKEN_INDEX

_LAZY = {
    "VisionTower": "sea.models.vision",
    "OpenClipTower": "sea.models.vision",
    "TimmTower": "sea.models.timm_tower",
    "ADAPTERS": "sea.models.adapter",
    "build_adapter": "sea.models.adapter",
    "save_adapter": "sea.models.adapter",
    "load_adapter": "sea.models.adapter",
    "load_llm": "sea.models.llm",
    "load_tokenizer": "sea.models.llm",
    "SeaMLLM": "sea.models.mllm",
    "SeaMLLMOutput": "sea.models.mllm",
    "greedy_generate": "sea.models.generation",
}

__all__ = ["IMAGE_TOKEN", "IGNORE_INDEX", "IMAGE_TOKEN_INDEX", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sea.models' has no attribute {name!r}")
