"""The tiny CLIP's training losses, in the style of open_clip's `loss.py`: open_clip's `ClipLoss` plus
three optional auxiliary terms that make shape learnable on the shapes world (why: docs/backbones.md).

- `ShapeNegativeLoss`: each image must prefer its caption over the same caption with one shape changed
  (a two-way softmax next to ClipLoss, as NegCLIP does);
- `TextUniformityLoss`: text-text InfoNCE over the batch's distinct captions (and their negatives), so
  captions that differ only in a shape word give the image tower distinct targets early;
- `TextWordLoss`: a throw-away linear head reads the colour and shape words back from the text
  embedding;
- `PatchWordLoss`: multiple-instance word tagging on the patch tokens (as PACL / FILIP make CLIP's patch
  tokens local): for each content word, the image's best-matching patch must match the word when the
  caption names it and must not when the caption rules it out.

`WorldClipLoss` combines them; each term comes back already weighted, under its config key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def caption_words(texts: list[str], words: list[str]) -> np.ndarray:
    """(N, len(words)) float32: 1 where the caption contains the word."""
    out = np.zeros((len(texts), len(words)), dtype=np.float32)
    index = {w: j for j, w in enumerate(words)}
    for i, text in enumerate(texts):
        for w in re.findall(r"[a-z]+", text.lower()):
            if w in index:
                out[i, index[w]] = 1.0
    return out


class ShapeNegativeLoss(nn.Module):
    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        neg_features: torch.Tensor,
        logit_scale: Any,
    ) -> torch.Tensor:
        """`image_features` and `text_features` of the views that have a negative, `neg_features` theirs."""
        pair = torch.stack(
            [(image_features * text_features).sum(-1), (image_features * neg_features).sum(-1)], dim=1
        )
        return self.weight * F.cross_entropy(logit_scale * pair, torch.zeros(len(pair), dtype=torch.long))


class TextUniformityLoss(nn.Module):
    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, text_features: torch.Tensor, texts: Sequence[str], logit_scale: Any) -> torch.Tensor:
        sims = text_features @ text_features.T * logit_scale
        same = torch.tensor([[a == b for b in texts] for a in texts]) & ~torch.eye(len(texts), dtype=bool)
        sims = sims.masked_fill(same, float("-inf"))  # a repeated text is not a negative of itself
        return self.weight * F.cross_entropy(sims, torch.arange(len(text_features)))


class TextWordLoss(nn.Module):
    def __init__(self, weight: float, embed_dim: int, words: list[str]) -> None:
        super().__init__()
        self.weight = weight
        self.words = words
        self.head = nn.Linear(embed_dim, len(words))

    def forward(self, text_features: torch.Tensor, captions: list[str]) -> torch.Tensor:
        targets = torch.tensor(caption_words(captions, self.words))
        logits = self.head(text_features * math.sqrt(text_features.shape[-1]))
        return self.weight * F.binary_cross_entropy_with_logits(logits, targets)


def word_targets(captions: list[str], words: list[str], backgrounds: Sequence[str]) -> torch.Tensor:
    """(N, len(words)) targets for `PatchWordLoss`: 1 named by the caption, 0 ruled out, -1 unknown.

    World captions name every object, so an object word a caption does not name is absent; a background
    word is known only when the caption names the background (then the other background words are
    absent)."""
    named = torch.tensor(caption_words(captions, words))
    is_bg = torch.tensor([w in backgrounds for w in words])
    says_bg = (named[:, is_bg] > 0).any(1, keepdim=True)
    unknown = is_bg.unsqueeze(0) & ~says_bg & (named == 0)
    return named.masked_fill(unknown, -1.0)


class PatchWordLoss(nn.Module):
    def __init__(self, weight: float, words: list[str], backgrounds: Sequence[str]) -> None:
        super().__init__()
        self.weight = weight
        self.words = words
        self.backgrounds = list(backgrounds)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(
        self, patch_features: torch.Tensor, word_features: torch.Tensor, captions: list[str], logit_scale: Any
    ) -> torch.Tensor:
        """`patch_features` (N, P, D) and `word_features` (W, D), both L2-normalised."""
        targets = word_targets(captions, self.words, self.backgrounds)
        best = torch.einsum("npd,wd->nwp", patch_features, word_features).amax(-1)
        logits = logit_scale * best + self.bias
        known = targets >= 0
        loss = F.binary_cross_entropy_with_logits(logits[known], targets[known])
        return self.weight * loss


class WorldClipLoss:
    """ClipLoss plus the auxiliary terms whose weight (`backbones.clip.<name>_loss`) is > 0."""

    def __init__(
        self,
        shape_negative: float,
        text_uniformity: float,
        text_word: float,
        embed_dim: int,
        content_words: list[str],
        patch_word: float = 0.0,
        patch_words: Sequence[str] = (),
        backgrounds: Sequence[str] = (),
    ) -> None:
        import open_clip

        self.clip = open_clip.ClipLoss()
        self.shape_negative = ShapeNegativeLoss(shape_negative) if shape_negative > 0 else None
        self.uniformity = TextUniformityLoss(text_uniformity) if text_uniformity > 0 else None
        self.words = TextWordLoss(text_word, embed_dim, content_words) if text_word > 0 else None
        self.patch_words = (
            PatchWordLoss(patch_word, list(patch_words), backgrounds) if patch_word > 0 else None
        )

    def trainable(self) -> list[nn.Parameter]:
        """Parameters the losses own (the word head's), trained without weight decay."""
        heads = [h for h in (self.words, self.patch_words) if h is not None]
        return [p for h in heads for p in h.parameters()]

    def __call__(
        self, out: dict[str, Any], captions: list[str], negatives: list[str], has_neg: list[int]
    ) -> dict[str, torch.Tensor]:
        """The weighted losses of a batch: `out` is the model's output dict over `captions` followed by
        `negatives` (the shape-swapped captions of the views `has_neg`)."""
        text_all = out["text_features"]
        text_features, neg_features = text_all[: len(captions)], text_all[len(captions) :]
        losses = self.clip(out["image_features"], text_features, out["logit_scale"], output_dict=True)
        if has_neg and self.shape_negative is not None:
            losses["shape_negative_loss"] = self.shape_negative(
                out["image_features"][has_neg], text_features[has_neg], neg_features, out["logit_scale"]
            )
        if self.uniformity is not None:
            losses["text_uniformity_loss"] = self.uniformity(
                text_all, captions + negatives, out["logit_scale"]
            )
        if self.words is not None:
            losses["text_word_loss"] = self.words(text_features, captions)
        if self.patch_words is not None:
            losses["patch_word_loss"] = self.patch_words(
                out["patch_features"], out["word_features"], captions, out["logit_scale"]
            )
        return losses
