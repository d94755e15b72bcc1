"""CLIP token labeling (sea-method.md section 2): top-n words per visual patch, stored for `align`.

- `text`: the word list embedded with the CLIP text tower, cached (`word_embeddings`);
- `patches`: normalised joint-space patch features (`patch_features`, variants `proj` / `maskclip`);
- `scoring`: batched top-n with the chosen sign, score threshold and background filter (`score_patches`);
- `transfer`: labels mapped onto another tower's patch grid (`overlap_index`, `transfer_labels`);
- `storage`: shards + manifest (`load_labels`, `LabelSet`, `check_label_compatibility`);
- `labeler`: `LabelSettings`, `Labeler`, `label_rows`;
- `quality`: accuracy against the shapes world's ground truth and label-map PNGs.

Names are imported lazily so that importing the package does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "word_embeddings": "sea.labeling.text",
    "read_words": "sea.labeling.text",
    "patch_features": "sea.labeling.patches",
    "score_patches": "sea.labeling.scoring",
    "BackgroundFilter": "sea.labeling.scoring",
    "overlap_index": "sea.labeling.transfer",
    "transfer_labels": "sea.labeling.transfer",
    "LabelSet": "sea.labeling.storage",
    "load_labels": "sea.labeling.storage",
    "check_label_compatibility": "sea.labeling.storage",
    "LabelSettings": "sea.labeling.labeler",
    "Labeler": "sea.labeling.labeler",
    "label_rows": "sea.labeling.labeler",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sea.labeling' has no attribute {name!r}")
