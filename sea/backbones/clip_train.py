"""Train a tiny open_clip CLIP on the shapes world, evaluate it zero-shot, save it where `model.vision` reads.

Model: open_clip's own `CLIP`, built by `open_clip.create_model` from a config JSON registered with
`open_clip.add_model_config` (the model name is the file's stem), open_clip's default tokenizer (the
bundled BPE, vocab 49408, offline) and open_clip's preprocessing transform. Loss: `open_clip.ClipLoss`
(with the optional terms of `sea.backbones.clip_loss`);
the logit scale is learned in log space and clamped to [0, ln 100] after every step; no weight decay
on 1-D parameters.

Making shape learnable needs the options of `backbones.clip` (views that isolate or zoom objects,
colour-matched batch groups, the auxiliary losses of `sea.backbones.clip_loss`, patch whitening): what
was measured and why each exists is in docs/backbones.md.

Zero-shot evaluation on the held-out eval split (never trained on):

- `zeroshot_object_acc`: every eval object, isolated at its own place and size, classified among all
  colour+shape pairs with prompts from `eval_templates` (chance 1 / (colours x shapes));
- `zeroshot_color_acc` / `zeroshot_shape_acc`: the same scores marginalised (log-sum-exp over the other
  attribute) to a colour or shape decision (chance 1 / colours, 1 / shapes);
- `retrieval_top1`: whole eval images against the set of distinct eval captions (canonical captions of
  the ground truth), image -> text top-1;
- `shape_swap_acc` / `color_swap_acc`: whole images; the true caption must outscore captions that change
  one object's shape (colour), `eval_swap_negatives` of them drawn at random (all when 0); chance
  1 / (1 + number of such captions), averaged over images.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sea.backbones.common import cosine_lr, require, seed_everything, set_lr
from sea.backbones.world_data import (
    WorldImage,
    canonical_caption,
    gt_caption,
    isolate,
    load_arrays,
    object_phrase,
    read_split,
    read_vocabulary,
    shape_swap,
    zoom,
)
from sea.utils.settings import settings_from

log = logging.getLogger(__name__)

# open_clip's default tokenizer (SimpleTokenizer, bundled BPE): vocab size of the text embedding.
OPENCLIP_VOCAB_SIZE = 49408
VISION_KEYS = (
    "name",
    "mlp_ratio",
    "image_size",
    "patch_size",
    "width",
    "layers",
    "heads",
    "text_width",
    "text_layers",
    "text_heads",
    "context_length",
    "embed_dim",
)


@dataclass(frozen=True)
class ClipSettings:
    """`backbones.clip` (conf/backbones/default.yaml explains every value; why: docs/backbones.md)."""

    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    grad_clip: float | None
    train_splits: Any  # world splits trained on
    group_size: int
    isolate_objects: bool
    zoom_prob: float
    shape_negative_loss: float
    text_uniformity_loss: float
    text_word_loss: float
    patch_word_loss: float
    patch_whitening: float | None
    whitening_views: int
    init_logit_scale: float
    world_caption_prob: float
    size_word_prob: float
    background_prob: float
    hflip: bool
    eval_templates: Any  # prompt templates of the zero-shot classifier
    eval_swap_negatives: int
    log_every: int
    eval_every: int

    @classmethod
    def from_config(cls, section: Any) -> ClipSettings:
        if isinstance(section, ClipSettings):
            return section
        return settings_from(cls, section, "backbones.clip")


# Seeds of the independent random streams (numpy SeedSequence entropy next to the stage seed).
_BATCH_STREAM, _VIEW_STREAM, _EVAL_STREAM, _INIT_STREAM = 11, 12, 13, 14


def model_config(vcfg: dict) -> dict:
    """open_clip model config (the JSON `add_model_config` registers) from the `model.vision` sizes."""
    require(vcfg, VISION_KEYS, "model.vision")
    width, heads = int(vcfg["width"]), int(vcfg["heads"])
    if width % heads:
        raise ValueError(f"model.vision.width ({width}) must be divisible by model.vision.heads ({heads})")
    if int(vcfg["image_size"]) % int(vcfg["patch_size"]):
        raise ValueError("model.vision.image_size must be divisible by model.vision.patch_size")
    return {
        "embed_dim": int(vcfg["embed_dim"]),
        "vision_cfg": {
            "image_size": int(vcfg["image_size"]),
            "layers": int(vcfg["layers"]),
            "width": width,
            "head_width": width // heads,
            "mlp_ratio": float(vcfg["mlp_ratio"]),
            "patch_size": int(vcfg["patch_size"]),
            "pool_type": str(vcfg.get("pool_type", "tok")),
        },
        "text_cfg": {
            "context_length": int(vcfg["context_length"]),
            "vocab_size": OPENCLIP_VOCAB_SIZE,
            "width": int(vcfg["text_width"]),
            "heads": int(vcfg["text_heads"]),
            "layers": int(vcfg["text_layers"]),
        },
    }


def register(config_path: Path) -> str:
    """Register a model config JSON with open_clip; the model name is the file's stem."""
    import open_clip

    open_clip.add_model_config(config_path)
    return Path(config_path).stem


def load_clip(config_path: str | Path, weights: str | Path):
    """The saved model as any consumer loads it: (model, preprocess_val, tokenizer), in eval mode."""
    import open_clip

    name = register(Path(config_path))
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=str(weights))
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(name)


# ----------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class View:
    """A training view: image `image` (index into the arrays), all objects or only those in `keep`."""

    image: int
    keep: tuple[int, ...] | None = None


class WorldViews:
    """Training views of the world's train images, grouped by colour multiset for hard batches."""

    def __init__(self, images: list[WorldImage], pixels: np.ndarray, masks: np.ndarray, tcfg: Any) -> None:
        tcfg = ClipSettings.from_config(tcfg)
        self.images, self.pixels, self.masks = images, pixels, masks
        self.group_size = max(1, tcfg.group_size)
        self.world_caption_prob = tcfg.world_caption_prob
        self.size_prob = tcfg.size_word_prob
        self.background_prob = tcfg.background_prob
        self.hflip = tcfg.hflip
        self.zoom_prob = tcfg.zoom_prob
        views = []
        for i, im in enumerate(images):
            views.append(View(i))
            if tcfg.isolate_objects and len(im.objects) > 1:
                views += [View(i, (int(o["index"]),)) for o in im.objects]
        self.views = views
        # What a view's ground-truth caption says: its set of (colour, shape) pairs.
        self.content = [self._content(v) for v in views]
        buckets: dict[tuple[str, ...], list[int]] = {}
        for k, v in enumerate(views):
            buckets.setdefault(images[v.image].colors(v.keep), []).append(k)
        self.bucket_keys = sorted(buckets)
        self.buckets = [np.asarray(buckets[key]) for key in self.bucket_keys]
        sizes = np.asarray([len(b) for b in self.buckets], dtype=np.float64)
        self.bucket_p = sizes / sizes.sum()

    def _content(self, v: View) -> tuple:
        return tuple(sorted((o["color"], o["shape"]) for o in self.images[v.image].kept(v.keep)))

    def __len__(self) -> int:
        return len(self.views)

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[int]:
        """View ids of one batch: groups of `group_size` views with one colour multiset and distinct
        contents, then random views (distinct contents where possible) up to `batch_size`."""
        batch_size = min(batch_size, len(self.views))
        chosen: list[int] = []
        seen: set[tuple] = set()

        def take(candidates: np.ndarray, limit: int) -> None:
            got = 0
            for k in candidates:
                if got >= limit or len(chosen) >= batch_size:
                    return
                c = self.content[int(k)]
                if c not in seen:
                    seen.add(c)
                    chosen.append(int(k))
                    got += 1

        if self.group_size > 1:
            n_groups = min(batch_size // self.group_size, len(self.buckets))
            keys = rng.choice(len(self.buckets), size=n_groups, replace=False, p=self.bucket_p)
            for key in keys:
                bucket = self.buckets[int(key)]
                take(bucket[rng.permutation(len(bucket))[: 8 * self.group_size]], self.group_size)
        while len(chosen) < batch_size:
            before = len(chosen)
            take(rng.permutation(len(self.views))[: 4 * batch_size], batch_size - len(chosen))
            if len(chosen) == before:  # fewer distinct contents than the batch: allow repeats
                rest = rng.choice(len(self.views), size=batch_size - len(chosen), replace=False)
                chosen += [int(k) for k in rest if int(k) not in chosen]
                break
        return chosen

    def render(
        self, k: int, rng: np.random.Generator, shapes: list[str] | None = None
    ) -> tuple[np.ndarray, str, str | None]:
        """Pixels, caption and (when `shapes` is given) a hard-negative caption of view `k`: the same
        caption with one object's shape changed (None when no change is possible). Caption form,
        isolation fill, zoom and flip come from `rng`; a view of one object is zoomed in with
        probability `zoom_prob`."""
        v = self.views[k]
        im = self.images[v.image]
        pix = self.pixels[v.image]
        if v.keep is not None:
            pix = isolate(pix, self.masks[v.image], v.keep, rng)
        objs = im.kept(v.keep)
        zoomed = len(objs) == 1 and self.zoom_prob > 0 and rng.random() < self.zoom_prob
        if zoomed:
            pix = zoom(pix, objs[0]["bbox"], rng)
        swap = shape_swap(objs, shapes, rng) if shapes else None
        if v.keep is None and not zoomed and im.caption and rng.random() < self.world_caption_prob:
            # The world's caption may name positions: never flipped. Negative: one shape word replaced.
            negative = None
            if swap:
                ((j, change),) = swap.items()
                negative, n = re.subn(rf"\b{objs[j]['shape']}\b", change["shape"], im.caption, count=1)
                negative = negative if n else None
            return pix, im.caption, negative
        if self.hflip and rng.random() < 0.5:
            pix = pix[:, ::-1]
        state = rng.bit_generator.state
        text = gt_caption(objs, im.background, rng, self.size_prob, self.background_prob)
        negative = None
        if swap:
            rng.bit_generator.state = state
            negative = gt_caption(objs, im.background, rng, self.size_prob, self.background_prob, swap)
        return pix, text, negative


def to_tensor_batch(preprocess, arrays: list[np.ndarray]):
    """Apply open_clip's preprocessing transform to RGB uint8 arrays; a (N, 3, S, S) float tensor."""
    import torch
    from PIL import Image

    return torch.stack([preprocess(Image.fromarray(np.ascontiguousarray(a))) for a in arrays])


def train_token_rows(model, tokenizer, texts: list[str]):
    """Swap the text tower's token embedding for one where only the rows of tokens in `texts` are
    parameters (the rest frozen, looked up as before). open_clip's default vocabulary has 49,408 rows
    and the world's captions use about a hundred: this saves the dense gradient and AdamW update of
    ~6M unused values every step. Returns a function that puts the trained rows back into the
    original `nn.Embedding` (the saved state dict is plain open_clip)."""
    import torch
    import torch.nn.functional as F

    original = model.token_embedding
    ids = torch.unique(tokenizer(texts))
    vocab = original.weight.shape[0]

    class TrainedRows(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            weight = original.weight.detach()
            self.register_buffer("frozen", weight.clone(), persistent=False)
            lookup = torch.full((vocab,), -1, dtype=torch.long)
            lookup[ids] = torch.arange(len(ids))
            self.register_buffer("lookup", lookup, persistent=False)
            self.rows = torch.nn.Parameter(weight[ids].clone())

        def forward(self, text):
            pos = self.lookup[text]
            # F.embedding, not indexing: its CPU backward is deterministic (index_put_ accumulate is not).
            trained = F.embedding(pos.clamp(min=0), self.rows)
            return torch.where((pos >= 0).unsqueeze(-1), trained, F.embedding(text, self.frozen))

    rows = TrainedRows()
    model.token_embedding = rows

    def restore() -> None:
        with torch.no_grad():
            original.weight.copy_(rows.frozen)
            original.weight[ids] = rows.rows.detach()
        model.token_embedding = original

    return restore


def forward_with_patches(model, images, texts, words) -> dict:
    """`model(images, texts)`'s output dict plus the patch tokens in the joint space (the labeler's
    `proj` feature) and the embeddings of `words`, all L2-normalised."""
    import torch.nn.functional as F

    visual = model.visual
    visual.output_tokens = True
    try:
        pooled, tokens = visual(images)
    finally:
        visual.output_tokens = False
    return {
        "image_features": F.normalize(pooled, dim=-1),
        "text_features": model.encode_text(texts, normalize=True),
        "logit_scale": model.logit_scale.exp(),
        "patch_features": F.normalize(tokens @ visual.proj, dim=-1),
        "word_features": model.encode_text(words, normalize=True),
    }


def whiten_patch_embedding(visual, images, eps_ratio: float):
    """Data-dependent init of the ViT patch embedding: PCA whitening of the training patches.

    Patch pixels are dominated by a few colour directions (eigenvalues spanning five orders of
    magnitude); the directions that carry an object's outline are tiny, so a randomly initialised
    linear patch embedding passes them on weakly and shape is learned very slowly. Setting `conv1` to
    the whitening transform (eigenvectors / sqrt(eigenvalue + eps), eps = `eps_ratio` x the mean
    eigenvalue; with sign-flipped copies when the width exceeds the patch dimension) gives every
    direction comparable scale from the first step; the patch mean is folded into the positional
    embedding (conv1 has no bias). Only the initial values change: the architecture and the saved
    state dict stay plain open_clip. Returns the eigenvalues (descending).
    """
    import torch

    conv = visual.conv1
    p = conv.kernel_size[0]
    patches = images.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * p * p).double()
    mean = patches.mean(0)
    lam, vec = torch.linalg.eigh(torch.cov(patches.T))
    lam = lam.clamp(min=0)
    order = torch.argsort(lam, descending=True)
    k = conv.out_channels
    pick = order[torch.arange(k) % len(order)]
    sign = 1.0 - 2.0 * ((torch.arange(k) // len(order)) % 2).double()
    weight = (vec[:, pick] / torch.sqrt(lam[pick] + eps_ratio * lam.mean())).T * sign[:, None]
    with torch.no_grad():
        conv.weight.copy_(weight.reshape(conv.weight.shape).to(conv.weight.dtype))
        visual.positional_embedding[1:] -= (weight @ mean).to(visual.positional_embedding.dtype)
    return lam[order]


def vocabulary_texts(
    vocab, images: list[WorldImage], templates: list[str], world_captions: bool
) -> list[str]:
    """Every text the training and the zero-shot prompts can produce (for `train_token_rows`)."""
    words = [*vocab.colors, *vocab.shapes, *vocab.backgrounds, *vocab.extra.get("sizes", {})]
    texts = [
        " ".join(words) + " a an and on background , .",
        *(t.replace("{}", " ".join(words)) for t in templates),
    ]
    if world_captions:
        texts += sorted({im.caption for im in images if im.caption})
    return texts


# ----------------------------------------------------------------------------------------- eval


def encode_images(model, preprocess, arrays: list[np.ndarray], batch_size: int = 256):
    import torch

    feats = []
    with torch.no_grad():
        for i in range(0, len(arrays), batch_size):
            feats.append(
                model.encode_image(to_tensor_batch(preprocess, arrays[i : i + batch_size]), normalize=True)
            )
    return torch.cat(feats)


def encode_texts(model, tokenizer, texts: list[str], batch_size: int = 512):
    import torch

    feats = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            feats.append(model.encode_text(tokenizer(texts[i : i + batch_size]), normalize=True))
    return torch.cat(feats)


def evaluate_clip(
    model,
    preprocess,
    tokenizer,
    images: list[WorldImage],
    pixels: np.ndarray,
    masks: np.ndarray,
    colors: list[str],
    shapes: list[str],
    templates: list[str],
    seed: int,
    swap_negatives: int = 4,
) -> dict[str, float]:
    """Zero-shot metrics on held-out images (see the module docstring). Pure: the model is unchanged."""
    import open_clip
    import torch

    was_training = model.training
    model.eval()
    try:
        rng = np.random.default_rng([seed, _EVAL_STREAM])
        # Objects, each isolated at its own place and size.
        obj_arrays, obj_truth = [], []
        for i, im in enumerate(images):
            for o in im.objects:
                obj_arrays.append(isolate(pixels[i], masks[i], (int(o["index"]),), rng))
                obj_truth.append((colors.index(o["color"]), shapes.index(o["shape"])))
        pairs = [(c, s) for c in colors for s in shapes]
        classifier = open_clip.build_zero_shot_classifier(
            model,
            tokenizer,
            [object_phrase({"color": c, "shape": s}) for c, s in pairs],
            templates,
            num_classes_per_batch=None,
        )
        scale = float(model.logit_scale.detach().exp())
        with torch.no_grad():
            logits = scale * encode_images(model, preprocess, obj_arrays) @ classifier
            grid = logits.view(len(obj_arrays), len(colors), len(shapes))
            pred_pair = logits.argmax(1)
            pred_color = torch.logsumexp(grid, dim=2).argmax(1)
            pred_shape = torch.logsumexp(grid, dim=1).argmax(1)
        truth = torch.tensor(obj_truth)
        true_pair = truth[:, 0] * len(shapes) + truth[:, 1]
        metrics = {
            "zeroshot_object_acc": (pred_pair == true_pair).float().mean().item(),
            "zeroshot_color_acc": (pred_color == truth[:, 0]).float().mean().item(),
            "zeroshot_shape_acc": (pred_shape == truth[:, 1]).float().mean().item(),
            "chance_object_acc": 1.0 / len(pairs),
            "chance_color_acc": 1.0 / len(colors),
            "chance_shape_acc": 1.0 / len(shapes),
            "eval_objects": float(len(obj_arrays)),
        }

        # Whole images: retrieval among distinct captions, and shape / colour swaps.
        img_feats = encode_images(model, preprocess, list(pixels))
        truths = [canonical_caption(list(im.objects)) for im in images]
        per_image: list[dict[str, list[str]]] = []
        for im in images:
            objs = list(im.objects)
            swaps: dict[str, list[str]] = {}
            for attr, values in (("shape", shapes), ("color", colors)):
                alts = set()
                for j, o in enumerate(objs):
                    for v in values:
                        if v != o[attr]:
                            changed = [dict(p) for p in objs]
                            changed[j][attr] = v
                            alts.add(canonical_caption(changed))
                alts.discard(canonical_caption(objs))
                alts = sorted(alts)
                if swap_negatives and len(alts) > swap_negatives:
                    alts = [
                        alts[int(k)] for k in sorted(rng.choice(len(alts), swap_negatives, replace=False))
                    ]
                swaps[attr] = alts
            per_image.append(swaps)
        texts = sorted(set(truths) | {t for sw in per_image for a in sw.values() for t in a})
        index = {t: k for k, t in enumerate(texts)}
        with torch.no_grad():
            text_feats = encode_texts(model, tokenizer, texts)
            sims = img_feats @ text_feats.T
        distinct = sorted(set(truths))
        cols = torch.tensor([index[t] for t in distinct])
        best = sims[:, cols].argmax(1)
        hits = [distinct[int(b)] == t for b, t in zip(best, truths, strict=True)]
        metrics["retrieval_top1"] = float(np.mean(hits))
        metrics["chance_retrieval_top1"] = 1.0 / len(distinct)
        for attr in ("shape", "color"):
            hits, chance = [], []
            for i, (t, sw) in enumerate(zip(truths, per_image, strict=True)):
                if not sw[attr]:
                    continue
                neg = sims[i, [index[x] for x in sw[attr]]]
                hits.append(bool(sims[i, index[t]] > neg.max()))
                chance.append(1.0 / (1 + len(sw[attr])))
            metrics[f"{attr}_swap_acc"] = float(np.mean(hits)) if hits else float("nan")
            metrics[f"chance_{attr}_swap_acc"] = float(np.mean(chance)) if chance else float("nan")
        return metrics
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------- train


@dataclass
class ClipRun:
    """One CLIP training: the model with its preprocessing and tokenizer, the world's data, the loss and
    the optimizer (built by `setup_clip`, advanced by `clip_step`)."""

    settings: ClipSettings
    seed: int
    model: Any
    preprocess: Any
    tokenizer: Any
    vocab: Any
    views: WorldViews
    eval_images: list[WorldImage]
    eval_pixels: Any
    eval_masks: Any
    restore_rows: Any  # puts the trained token rows back into open_clip's embedding
    loss_fn: Any
    optimizer: Any
    schedule: Any


def write_model_config(vcfg: dict, out: Path) -> str:
    """Write `<name>.json` (the open_clip model config) into `out` and register it; the model's name."""
    out.mkdir(parents=True, exist_ok=True)
    name = str(vcfg["name"])
    config_path = out / f"{name}.json"
    config_path.write_text(json.dumps(model_config(vcfg), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    register(config_path)
    return name


def setup_clip(world: Path, vcfg: dict, settings: ClipSettings, seed: int, name: str) -> ClipRun:
    """Seed, build the model, read the world, initialise (patch whitening, trained token rows), and
    build the loss and AdamW (`sea.training.optim`; no weight decay on 1-D parameters and the loss's
    own parameters). The order of the steps fixes what each random draw initialises."""
    import open_clip

    from sea.backbones.clip_loss import WorldClipLoss
    from sea.training.optim import ParamGroupSpec, build_optimizer, param_groups

    seed_everything(seed)
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, output_dict=True, init_logit_scale=math.log(settings.init_logit_scale)
    )
    tokenizer = open_clip.get_tokenizer(name)
    model.train()

    vocab = read_vocabulary(world)
    train_images = [im for split in settings.train_splits for im in read_split(world, split)]
    views = WorldViews(train_images, *load_arrays(train_images), settings)
    eval_images = read_split(world, "eval")
    eval_pixels, eval_masks = load_arrays(eval_images)
    if settings.patch_whitening:
        rng = np.random.default_rng([seed, _INIT_STREAM])
        sample = rng.choice(len(views), size=min(len(views), settings.whitening_views), replace=False)
        whiten_patch_embedding(
            model.visual,
            to_tensor_batch(preprocess, [views.render(int(k), rng)[0] for k in sample]),
            float(settings.patch_whitening),
        )
    texts = vocabulary_texts(vocab, train_images, list(settings.eval_templates), views.world_caption_prob > 0)
    restore_rows = train_token_rows(model, tokenizer, texts)
    log.info(
        "clip: %d train images, %d views, %d colour groups; %d eval images",
        len(train_images),
        len(views),
        len(views.buckets),
        len(eval_images),
    )

    backgrounds = [*vocab.backgrounds, "background"]  # the words naming background in the captions
    loss_fn = WorldClipLoss(
        settings.shape_negative_loss,
        settings.text_uniformity_loss,
        settings.text_word_loss,
        int(vcfg["embed_dim"]),
        [*vocab.colors, *vocab.shapes],
        settings.patch_word_loss,
        [*vocab.colors, *vocab.shapes, *backgrounds],
        backgrounds,
    )
    groups = param_groups([ParamGroupSpec("clip", model)], settings.lr, settings.weight_decay)
    if loss_fn.trainable():
        groups.append({"name": "loss", "params": loss_fn.trainable(), "lr": settings.lr, "weight_decay": 0.0})
    optimizer = build_optimizer(groups, settings.betas, settings.eps)
    schedule = cosine_lr(settings.lr, settings.warmup_steps, settings.steps)
    return ClipRun(
        settings, seed, model, preprocess, tokenizer, vocab, views, eval_images, eval_pixels, eval_masks,
        restore_rows, loss_fn, optimizer, schedule,
    )  # fmt: skip


def clip_step(run: ClipRun, step: int) -> dict[str, float]:
    """One optimizer step on the step's batch (its own random streams, so a step's batch depends on the
    seed and the step only); the losses' values."""
    import torch

    set_lr(run.optimizer, run.schedule(step))
    ids = run.views.sample(run.settings.batch_size, np.random.default_rng([run.seed, _BATCH_STREAM, step]))
    view_rng = np.random.default_rng([run.seed, _VIEW_STREAM, step])
    negatives_from = run.vocab.shapes if run.loss_fn.shape_negative is not None else None
    rendered = [run.views.render(k, view_rng, negatives_from) for k in ids]
    images = to_tensor_batch(run.preprocess, [r[0] for r in rendered])
    captions = [r[1] for r in rendered]
    has_neg = [i for i, r in enumerate(rendered) if r[2] is not None]
    negatives = [rendered[i][2] for i in has_neg]
    texts = run.tokenizer(captions + negatives)
    patch_words = run.loss_fn.patch_words
    if patch_words is not None:
        outputs = forward_with_patches(run.model, images, texts, run.tokenizer(patch_words.words))
    else:
        outputs = run.model(images, texts)
    losses = run.loss_fn(outputs, captions, negatives, has_neg)
    loss = sum(losses.values())
    if not math.isfinite(float(loss.detach())):
        raise FloatingPointError(f"clip: loss is {float(loss)} at step {step}; lower backbones.clip.lr")
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.settings.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), float(run.settings.grad_clip))
    run.optimizer.step()
    with torch.no_grad():
        run.model.logit_scale.clamp_(0, math.log(100))  # as open_clip: at most 100
    return {k: float(v.detach()) for k, v in losses.items()}


def log_step(run: ClipRun, step: int, losses: dict[str, float], tracker: Any) -> None:
    if tracker is not None:
        tracker.log_metrics(
            {
                "clip/train_loss": losses["contrastive_loss"],
                "clip/lr": run.schedule(step),
                "clip/logit_scale": float(run.model.logit_scale.detach().exp()),
                **{f"clip/train_{k}": v for k, v in losses.items() if k != "contrastive_loss"},
            },
            step=step,
        )


def evaluate_run(run: ClipRun, step: int, tracker: Any) -> dict[str, float]:
    """The zero-shot metrics on the eval split (`evaluate_clip`), logged at `step`."""
    m = evaluate_clip(
        run.model,
        run.preprocess,
        run.tokenizer,
        run.eval_images,
        run.eval_pixels,
        run.eval_masks,
        run.vocab.colors,
        run.vocab.shapes,
        list(run.settings.eval_templates),
        run.seed,
        run.settings.eval_swap_negatives,
    )
    if tracker is not None:
        tracker.log_metrics({f"clip/{k}": v for k, v in m.items() if not k.startswith("chance")}, step=step)
    return m


def save_clip(model: Any, out: Path, name: str) -> None:
    """`<name>.safetensors`: the plain open_clip state dict."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / f"{name}.safetensors"), metadata={"format": "pt", "open_clip_model": name})


def train_clip(
    world: Path, vcfg: dict, tcfg: Any, seed: int, out: Path, tracker: Any = None
) -> dict[str, float]:
    """Train, evaluate and save the tiny CLIP into `out` (`<name>.json` + `<name>.safetensors`).

    `vcfg` is `model.vision`, `tcfg` is `backbones.clip`. Returns flat metrics (no prefix).
    """
    from tqdm import tqdm

    settings = ClipSettings.from_config(tcfg)
    t_start = time.perf_counter()
    name = write_model_config(vcfg, out)
    run = setup_clip(world, vcfg, settings, seed, name)
    t_data = time.perf_counter() - t_start

    steps, log_every, eval_every = settings.steps, max(1, settings.log_every), settings.eval_every
    curve: list[float] = []
    t_train = time.perf_counter()
    bar = tqdm(range(steps), desc="clip", unit="step", mininterval=2.0)
    for step in bar:
        losses = clip_step(run, step)
        curve.append(losses["contrastive_loss"])
        if step % log_every == 0 or step == steps - 1:
            bar.set_postfix(
                loss=f"{curve[-1]:.3f}", scale=f"{float(run.model.logit_scale.detach().exp()):.1f}"
            )
            log_step(run, step, losses, tracker)
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            m = evaluate_run(run, step + 1, tracker)
            log.info(
                "clip step %d: object %.3f colour %.3f shape %.3f shape-swap %.3f",
                step + 1,
                m["zeroshot_object_acc"],
                m["zeroshot_color_acc"],
                m["zeroshot_shape_acc"],
                m["shape_swap_acc"],
            )
    bar.close()
    t_train = time.perf_counter() - t_train

    run.restore_rows()
    t_eval = time.perf_counter()
    metrics = evaluate_run(run, steps, tracker)
    t_eval = time.perf_counter() - t_eval
    save_clip(run.model, out, name)

    tail = curve[-max(1, min(20, len(curve) // 5)) :]
    metrics.update(
        {
            "first_loss": curve[0] if curve else float("nan"),
            "final_loss": float(np.mean(tail)) if tail else float("nan"),
            "logit_scale": float(run.model.logit_scale.detach().exp()),
            "steps": float(steps),
            "train_views": float(len(run.views)),
            "params": float(sum(p.numel() for p in run.model.parameters())),
            "data_seconds": t_data,
            "train_seconds": t_train,
            "eval_seconds": t_eval,
            "seconds_per_step": t_train / max(1, steps),
        }
    )
    return metrics
