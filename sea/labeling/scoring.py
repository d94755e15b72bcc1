"""Scoring: per patch, the top-n words by the chosen similarity (sea-method.md Eq. 8), scores <= min_score
dropped, then an optional background filter. Batched over images and patches (chunks of patches against
the whole word matrix), no Python loop per patch.

Output per patch: `ids` int32 (n,) with -1 for an empty slot, `scores` fp16 (n,) with 0 there. Slots are
sorted by score, so kept labels come first.

Background filters (`BackgroundFilter.mode`), which empty every slot of a patch judged background:

- `none`: keep everything;
- `margin`: the patch's top-1 score must exceed the mean top-1 score of its image by more than `margin`
  (objects stand out from the image's typical patch; CLIP labels background with object words);
- `word`: the patch's top-1 word must not be one of `words` (e.g. "background" or background colours);
- `mean_sim`: the patch's feature must differ from its image's mean patch feature: cosine to the
  normalised mean at most `threshold` (background is most of an image, so it dominates the mean);
- `mean_sim_word`: both `mean_sim` and `word` (a patch either one judges background loses its labels).

docs/labeling.md has the measurements: on the tiny world CLIP background patches score *higher* than
object patches, so `margin` removes objects first, while `mean_sim` separates them (AUC 0.93).

Word centring (`label.center_words`): words are ranked by their similarity minus their mean similarity
over a sample of patches (CLIP Surgery's redundancy removal), so a word that is close to every patch
(a "hub") no longer takes them all. Scores are linear in the patch feature, so this is the feature minus
the sample's mean patch feature (`centered`); background filters still read the raw feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from sea.errors import SeaError

SIGNS = {"cosine": 1.0, "neg_cosine": -1.0}
BACKGROUND_MODES = ("none", "margin", "word", "mean_sim", "mean_sim_word")
EMPTY_ID = -1
# Similarity matrix elements per chunk (patches x words): 2^26 fp32 = 256 MiB.
DEFAULT_CHUNK_ELEMS = 1 << 26


def check_sign(sign: str) -> float:
    if sign not in SIGNS:
        raise SeaError(f"label.sign must be one of {tuple(SIGNS)}, got '{sign}'")
    return SIGNS[sign]


@dataclass(frozen=True)
class BackgroundFilter:
    """Which patches count as background and lose all labels (see the module docstring)."""

    mode: str = "none"
    margin: float = 0.0
    words: tuple[str, ...] = field(default_factory=tuple)
    threshold: float = 0.9

    def __post_init__(self) -> None:
        if self.mode not in BACKGROUND_MODES:
            raise SeaError(f"label.background.mode must be one of {BACKGROUND_MODES}, got '{self.mode}'")

    @classmethod
    def from_config(cls, c: Any) -> BackgroundFilter:
        c = dict(c or {})
        return cls(
            str(c.get("mode", "none")),
            float(c.get("margin", 0.0)),
            tuple(c.get("words") or ()),
            float(c.get("threshold", 0.9)),
        )

    def word_ids(self, words: Sequence[str]) -> list[int]:
        """Positions of `self.words` in the word list (absent words are ignored)."""
        pos = {w: i for i, w in enumerate(words)}
        return [pos[w] for w in self.words if w in pos]

    def name(self) -> str:
        if self.mode == "margin":
            return f"margin_{self.margin:g}"
        if self.mode == "word":
            return "word_" + "-".join(self.words)
        if self.mode == "mean_sim":
            return f"mean_sim_{self.threshold:g}"
        if self.mode == "mean_sim_word":
            return f"mean_sim_{self.threshold:g}_word_" + "-".join(self.words)
        return "none"


def centered(feats: torch.Tensor, center: torch.Tensor | None) -> torch.Tensor:
    """`feats` minus the sample's mean patch feature `center` (d,): scoring these against the words ranks
    each word by its similarity minus its mean similarity over the sample. None: `feats` unchanged."""
    if center is None:
        return feats
    return feats - center.to(device=feats.device, dtype=feats.dtype)


def mean_feature(feats: torch.Tensor) -> torch.Tensor:
    """The mean of normalised patch features (..., d) over every patch: the centre for `centered`."""
    return feats.reshape(-1, feats.shape[-1]).float().mean(0)


def similarity_topk(
    feats: torch.Tensor,
    text: torch.Tensor,
    top_n: int,
    sign: float = 1.0,
    chunk_elems: int = DEFAULT_CHUNK_ELEMS,
    matmul_dtype: torch.dtype | None = None,
    center: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-n (scores fp32, ids int64) of `sign * feats @ text.T` over the last dim of `feats` (..., d)
    against `text` (q, d); with `center`, of `centered(feats, center)` (word centring). Chunks of patches
    keep the similarity matrix under `chunk_elems` elements."""
    feats = centered(feats, center)
    lead = feats.shape[:-1]
    flat = feats.reshape(-1, feats.shape[-1])
    k = min(int(top_n), text.shape[0])
    dtype = matmul_dtype or flat.dtype
    t = text.to(device=flat.device, dtype=dtype)
    rows = max(1, int(chunk_elems) // max(1, text.shape[0]))
    scores = torch.empty(flat.shape[0], k, device=flat.device, dtype=torch.float32)
    ids = torch.empty(flat.shape[0], k, device=flat.device, dtype=torch.long)
    for start in range(0, flat.shape[0], rows):
        sim = flat[start : start + rows].to(dtype) @ t.T
        if sign != 1.0:
            sim = sim.mul_(sign)
        s, i = sim.topk(k, dim=-1)
        scores[start : start + rows] = s.float()
        ids[start : start + rows] = i
    return scores.reshape(*lead, k), ids.reshape(*lead, k)


def background_mask(
    top_scores: torch.Tensor,
    top_ids: torch.Tensor,
    flt: BackgroundFilter,
    bg_word_ids: Sequence[int] = (),
    feats: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, N) bool: True where the patch is judged background. `top_scores`/`top_ids`: (B, N, n);
    `feats`: the normalised patch features (B, N, d), needed by `mean_sim`."""
    best = top_scores[..., 0]
    mask = torch.zeros_like(best, dtype=torch.bool)
    if flt.mode in ("mean_sim", "mean_sim_word"):
        if feats is None:
            raise ValueError("the mean_sim background filter needs the patch features")
        f = feats.float()
        mean = torch.nn.functional.normalize(f.mean(dim=-2, keepdim=True), dim=-1)
        mask |= (f * mean).sum(-1) > flt.threshold
    if flt.mode in ("word", "mean_sim_word") and bg_word_ids:
        mask |= torch.isin(top_ids[..., 0], torch.as_tensor(list(bg_word_ids), device=top_ids.device))
    if flt.mode == "margin":
        mask |= best - best.mean(dim=-1, keepdim=True) <= flt.margin
    return mask


def finalize(
    top_scores: torch.Tensor,
    top_ids: torch.Tensor,
    min_score: float = 0.0,
    background: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop slots with score <= min_score and every slot of background patches: (ids int32 with -1,
    scores fp16 with 0)."""
    keep = top_scores > min_score
    if background is not None:
        keep &= ~background.unsqueeze(-1)
    ids = torch.where(keep, top_ids, torch.full_like(top_ids, EMPTY_ID)).to(torch.int32)
    scores = torch.where(keep, top_scores, torch.zeros_like(top_scores)).to(torch.float16)
    return ids, scores


def draw_probabilities(ids: torch.Tensor, scores: torch.Tensor, min_score: float = 0.0) -> torch.Tensor:
    """(..., n) probability that `align` draws each label slot (sea-method.md Eq. 9, `align.sea.sampling:
    weighted`): score / sum over the usable labels (id >= 0, score > min_score), as
    `sea.training.sea_loss.sample_labels` weighs them (a test checks the two agree; the label stage does not
    import the training code). All 0 for a patch without a usable label (align draws another patch)."""
    usable = (ids >= 0) & (scores > min_score)
    weights = torch.where(usable, scores.float(), torch.zeros((), dtype=torch.float32))
    return weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)


def drawn_hit_rate(ids: torch.Tensor, scores: torch.Tensor, hit: torch.Tensor, empty: float) -> float:
    """Over the labelled patches, the mean chance that the label align draws is one `hit` marks (B, N, n
    bool: the slot's word is right / a caption word); `empty` when no patch is labelled."""
    right = (draw_probabilities(ids, scores) * hit).sum(-1)[ids[..., 0] >= 0]
    return float(right.mean()) if right.numel() else empty


def score_patches(
    feats: torch.Tensor,
    text: torch.Tensor,
    top_n: int = 10,
    sign: str = "cosine",
    min_score: float = 0.0,
    background: BackgroundFilter | None = None,
    bg_word_ids: Sequence[int] = (),
    chunk_elems: int = DEFAULT_CHUNK_ELEMS,
    matmul_dtype: torch.dtype | None = None,
    center: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels for normalised patch features `feats` (B, N, d) against normalised word embeddings `text`
    (q, d): (ids int32 (B, N, n), scores fp16 (B, N, n)), empty slots -1 / 0. With `center` (word
    centring) the scores are similarities minus the words' mean similarities."""
    s, i = similarity_topk(feats, text, top_n, check_sign(sign), chunk_elems, matmul_dtype, center)
    bg = background_mask(s, i, background, bg_word_ids, feats) if background is not None else None
    ids, scores = finalize(s, i, min_score, bg)
    if ids.shape[-1] < top_n:  # fewer words than slots: pad with empty slots
        pad = top_n - ids.shape[-1]
        ids = torch.nn.functional.pad(ids, (0, pad), value=EMPTY_ID)
        scores = torch.nn.functional.pad(scores, (0, pad), value=0.0)
    return ids, scores
