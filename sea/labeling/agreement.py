"""Label quality without ground truth: do the labels agree with the images' own captions?

Every pretraining image has a caption. A patch label that names something in the image should often be
a content word of that caption; a wrong sign or a collapsed labeler gives words unrelated to it. On a
sample of images, per variant (feature x sign) and for the labels the stage stores, from each patch's
first `top_k` labels (default 1: what ranks the variants like ground truth on the shapes world,
docs/labeling.md):

- `patch_agreement`: labelled patches with a content word of their image's caption among those labels;
  `patch_chance`: the same against the caption of another image (a fixed random pairing);
- `image_agreement` / `image_chance`: images whose top words (the `image_words` labels most frequent
  over their patches) include a content word of the own / the paired caption;
- `top1_entropy_bits`: entropy of the top-1 word over labelled patches; `top10_share`: labelled patches
  whose top-1 word is one of the 10 most frequent top-1 words; `top1_max_share`: the most frequent one's;
- `distinctness`: 1 - Jaccard overlap of the top-word sets of paired images (0: every image gets the
  same words);
- `labelled_fraction`: patches with at least one label.

For the stored labels also `drawn_agreement` / `drawn_chance`: the chance that the label `align` draws
(among all `label.top_n` kept labels, by score: sea-method.md Eq. 9) is a content word of the own / the
paired caption, over labelled patches. With many kept labels of close scores it is far below
`patch_agreement`, which reads only the first `top_k`.

Caption content words: the word list's terms of the caption (`sea.data.wordlist.caption_terms`: its
tokens, or their content lemmas when the list was lemmatised) that are not stop-words and are in the
list. `label.feature: auto` / `label.sign: auto` pick the variant with the largest
`patch_agreement - patch_chance` (`pick_variant`); `check_labels` is the guard.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from sea.errors import SeaError
from sea.labeling.settings import Guard

METRICS = (
    "patch_agreement",
    "patch_chance",
    "image_agreement",
    "image_chance",
    "top1_entropy_bits",
    "top10_share",
    "top1_max_share",
    "distinctness",
    "labelled_fraction",
)
DRAWN = ("drawn_agreement", "drawn_chance")  # the stored labels only (`CaptionCheck.labels`)
PAIRING_SEED = 0
AUTO = "auto"


def caption_word_mask(captions: Sequence[str], words: Sequence[str], lemmatize: bool = False) -> torch.Tensor:
    """(B, q) bool: word w is a content word of caption b (`lemmatize`: as the word list was built, a
    caption token counts as its content lemma unless it is a word of the list itself)."""
    from sea.data.wordlist import caption_terms, stop_words

    pos = {w: i for i, w in enumerate(words)}
    stops = stop_words()
    mask = torch.zeros(len(captions), len(words), dtype=torch.bool)
    for b, caption in enumerate(captions):
        ids = [pos[t] for t in caption_terms(caption, lemmatize, pos) if t not in stops and t in pos]
        mask[b, ids] = True
    return mask


def other_image(n: int, seed: int = PAIRING_SEED) -> torch.Tensor:
    """(n,) for each image the index of a random other image (itself only when n == 1)."""
    if n < 2:
        return torch.zeros(n, dtype=torch.long)
    shift = torch.randint(1, n, (n,), generator=torch.Generator().manual_seed(seed))
    return (torch.arange(n) + shift) % n


def image_top_words(ids: torch.Tensor, num_words: int, n: int) -> torch.Tensor:
    """(B, n) per image the n word ids most often among its patches' kept labels (-1 where fewer)."""
    flat = ids.reshape(ids.shape[0], -1).long()
    counts = torch.zeros(ids.shape[0], num_words + 1, dtype=torch.float32)
    counts.scatter_add_(
        1, torch.where(flat >= 0, flat, num_words), torch.ones_like(flat, dtype=torch.float32)
    )
    counts = counts[:, :num_words]
    top, idx = counts.topk(min(n, num_words), dim=-1)
    return torch.where(top > 0, idx, torch.full_like(idx, -1))


def _hits(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ids (B, ..., k) -> (B, ...) bool: some id >= 0 of the slot list is set in its image's `mask` row."""
    flat = ids.reshape(ids.shape[0], -1).long()
    hit = mask.gather(1, flat.clamp(min=0)) & (flat >= 0)
    return hit.reshape(ids.shape).any(-1)


def agreement_metrics(ids: torch.Tensor, mask: torch.Tensor, image_words: int = 3) -> dict[str, float]:
    """The module docstring's metrics for labels `ids` (B, N, k) (-1 = empty; the first k label slots of
    each patch) and caption words `mask` (B, q) from `caption_word_mask`; an image's top words are its
    `image_words` most frequent labels."""
    ids = ids.to("cpu", torch.long)
    batch = ids.shape[0]
    pair = other_image(batch)
    labelled = ids[..., 0] >= 0
    n_labelled = int(labelled.sum())

    def share(x: torch.Tensor, where: torch.Tensor) -> float:
        return float((x & where).sum()) / max(1, int(where.sum())) if where.any() else 0.0

    tops = image_top_words(ids, mask.shape[1], image_words)
    has_labels = tops[:, 0] >= 0
    top1 = ids[..., 0][labelled]
    freq = torch.bincount(top1, minlength=mask.shape[1]).float() if n_labelled else torch.zeros(1)
    p = freq[freq > 0] / max(1, n_labelled)
    patch, chance = share(_hits(ids, mask), labelled), share(_hits(ids, mask[pair]), labelled)
    return {
        "patch_agreement": patch,
        "patch_chance": chance,
        "image_agreement": share(_hits(tops, mask), has_labels),
        "image_chance": share(_hits(tops, mask[pair]), has_labels),
        "top1_entropy_bits": float(-(p * p.log2()).sum()) if n_labelled else 0.0,
        "top10_share": float(freq.topk(min(10, freq.numel())).values.sum()) / max(1, n_labelled),
        "top1_max_share": float(freq.max()) / max(1, n_labelled),
        "distinctness": _distinctness(tops, pair),
        "labelled_fraction": n_labelled / max(1, labelled.numel()),
    }


def drawn_agreement(ids: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """`drawn_agreement` / `drawn_chance` (module docstring) of labels `ids` / `scores` (B, N, n) against
    caption words `mask` (B, q)."""
    from sea.labeling.scoring import drawn_hit_rate

    ids, scores = ids.to("cpu", torch.long), scores.to("cpu")
    flat = ids.reshape(ids.shape[0], -1)

    def rate(m: torch.Tensor) -> float:
        hit = (m.gather(1, flat.clamp(min=0)) & (flat >= 0)).reshape(ids.shape)
        return drawn_hit_rate(ids, scores, hit, 0.0)

    return {"drawn_agreement": rate(mask), "drawn_chance": rate(mask[other_image(ids.shape[0])])}


def drawn_label_warning(m: dict[str, float], top_n: int) -> str | None:
    """A warning when the drawn label's margin over chance is under half the top-1's (`m`: the stored
    labels' metrics, `CaptionCheck.labels`): align would train mostly on lower-ranked words."""
    drawn, top = m["drawn_agreement"] - m["drawn_chance"], m["patch_agreement"] - m["patch_chance"]
    if top <= 0 or drawn >= top / 2:
        return None
    return (
        f"the labels align draws (one of label.top_n={top_n} by score) agree with the captions {drawn:.3f} "
        f"above chance, their top-1 {top:.3f}: align trains mostly on lower-ranked words; consider "
        "label.top_n=1 or align.sea.sampling=argmax"
    )


def _distinctness(tops: torch.Tensor, pair: torch.Tensor) -> float:
    """Mean over images of 1 - |A & B| / |A | B| of their top-word set A and their pair's B."""
    values = []
    for a, b in zip(tops.tolist(), tops[pair].tolist(), strict=True):
        sa, sb = {w for w in a if w >= 0}, {w for w in b if w >= 0}
        if sa or sb:
            values.append(1 - len(sa & sb) / len(sa | sb))
    return sum(values) / len(values) if values else 0.0


def variants_of(feature: str, sign: str) -> list[str]:
    """The `<feature>/<sign>` variants a setting allows (`auto` on an axis allows all of its values)."""
    from sea.labeling.patches import FEATURES
    from sea.labeling.scoring import SIGNS

    features = FEATURES if feature == AUTO else (feature,)
    signs = tuple(SIGNS) if sign == AUTO else (sign,)
    return [f"{f}/{s}" for f in features for s in signs]


@dataclass
class CaptionCheck:
    """A sample of pretraining images with their captions, their patch features of every variant and
    the word embeddings: `variants()` measures each feature x sign, `labels(settings)` the labels a
    `LabelSettings` stores (background filter included). `centers` (word centring): each feature's mean
    patch feature over the sample, subtracted before scoring."""

    feats: dict[str, torch.Tensor]
    text: torch.Tensor
    words: Sequence[str]
    mask: torch.Tensor
    top_k: int = 1
    image_words: int = 3
    centers: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        tower: Any,
        text: torch.Tensor,
        words: Sequence[str],
        rows: Sequence[dict],
        captions: Sequence[str],
        image_folder: Any,
        batch_size: int,
        mixed_precision: str | None = None,
        top_k: int = 1,
        image_words: int = 3,
        lemmatize: bool = False,
        center_words: bool = False,
    ) -> CaptionCheck:
        from sea.labeling.patches import sample_features
        from sea.labeling.scoring import mean_feature

        feats = sample_features(tower, rows, image_folder, batch_size, mixed_precision)
        mask = caption_word_mask(captions, words, lemmatize)
        centers = {f: mean_feature(v) for f, v in feats.items()} if center_words else {}
        return cls(feats, text.float(), words, mask, top_k, image_words, centers)

    @property
    def images(self) -> int:
        return int(self.mask.shape[0])

    @torch.no_grad()
    def _labels(
        self, feature: str, sign: str, n: int, min_score: float, background: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, scores) of the first `n` labels per patch of the sample, as the labeler makes them."""
        from sea.labeling.scoring import SIGNS, background_mask, finalize, similarity_topk

        f = self.feats[feature]
        s, i = similarity_topk(f, self.text, n, SIGNS[sign], center=self.centers.get(feature))
        bg = None
        if background is not None:
            bg = background_mask(s, i, background, background.word_ids(self.words), f)
        return finalize(s, i, min_score, bg)

    def _metrics(self, feature: str, sign: str, min_score: float, background: Any = None) -> dict[str, float]:
        ids, _ = self._labels(feature, sign, self.top_k, min_score, background)
        return agreement_metrics(ids, self.mask, self.image_words)

    def variants(self, min_score: float = 0.0) -> dict[str, dict[str, float]]:
        """Every `<feature>/<sign>` without a background filter (as the ground-truth variant report)."""
        return {v: self._metrics(*v.split("/"), min_score) for v in variants_of(AUTO, AUTO)}

    def labels(self, settings: Any) -> dict[str, float]:
        """The stored labels' metrics: the settings' variant, threshold and background filter, plus the
        drawn label's agreement (`drawn_agreement`, `drawn_chance`)."""
        variant = (settings.feature, settings.sign)
        ids, scores = self._labels(*variant, settings.top_n, settings.min_score, settings.background)
        return {
            **self._metrics(*variant, settings.min_score, settings.background),
            **drawn_agreement(ids, scores, self.mask),
        }


def margin(m: dict[str, float]) -> float:
    """What `auto` maximises: patch agreement above its chance level."""
    return m["patch_agreement"] - m["patch_chance"]


def pick_variant(report: dict[str, dict[str, float]], candidates: Iterable[str]) -> tuple[str, str]:
    """(the `<feature>/<sign>` of `candidates` with the largest margin, a one-line reason)."""
    ranked = sorted(candidates, key=lambda v: (-margin(report[v]), v))
    if not ranked:
        raise SeaError("label: no labeling variant to choose from")
    best = report[ranked[0]]
    reason = (
        f"{ranked[0]}: caption agreement {best['patch_agreement']:.3f} vs chance {best['patch_chance']:.3f}"
    )
    if len(ranked) > 1:
        reason += "; others: " + ", ".join(
            f"{v} {report[v]['patch_agreement']:.3f}/{report[v]['patch_chance']:.3f}" for v in ranked[1:]
        )
    return ranked[0], reason


def check_labels(variant: str, m: dict[str, float], guard: Guard, images: int) -> str | None:
    """The guard's one-line failure message for the labels of `variant`, or None when they pass."""
    if not guard.enabled:
        return None
    how = (
        "check label.feature / label.sign (or set both to auto) and the CLIP in model.vision; "
        "label.guard.enabled=false runs anyway"
    )
    where = f"label: {variant} labels on {images} sample images"
    if m["labelled_fraction"] == 0:
        return f"{where} are all empty (every score <= label.min_score); {how}"
    if m["patch_agreement"] < guard.min_lift * m["patch_chance"] or margin(m) < guard.min_margin:
        return (
            f"{where} agree with their captions no better than chance: {m['patch_agreement']:.3f} of "
            f"labelled patches name a caption word vs {m['patch_chance']:.3f} for another image's "
            f"caption (guard: lift >= {guard.min_lift:g}, margin >= {guard.min_margin:g}); {how}"
        )
    if m["top1_max_share"] > guard.max_top1_share:
        return (
            f"{where} collapsed: one word is the top-1 label of {m['top1_max_share']:.0%} of labelled "
            f"patches (guard: <= {guard.max_top1_share:.0%}); {how}"
        )
    return None


def format_table(report: dict[str, dict[str, float]]) -> str:
    """A markdown table of variant -> metrics."""
    keys = (*METRICS, *DRAWN)
    lines = ["| variant | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for v, m in report.items():
        lines.append(f"| {v} | " + " | ".join(f"{m[k]:.3f}" if k in m else "-" for k in keys) + " |")
    return "\n".join(lines)
