"""Patch-label quality of one run's CLIP (maskclip and proj features, the run's word list) under background
filters: none, `word` (world backgrounds), `mean_sim` at 0.8/0.85/0.9, and both together.

usage: label_filters.py ROOT [N_IMAGES] [overrides...]   (ROOT holds world/, prepared/, backbones/clip)
CENTER=1: rank words by similarity minus the word's mean similarity over all patches (word centring).
"""

import json
import os
import sys
from pathlib import Path

import torch

from sea.config import compose
from sea.labeling.patches import iter_batches, patch_features
from sea.labeling.quality import evaluate, ground_truth_on_grid, read_ground_truth
from sea.labeling.text import embed_words
from sea.models.vision import VisionTower

root = Path(sys.argv[1])
n_images = int(sys.argv[2]) if len(sys.argv) > 2 else 300
cfg = compose([f"paths.root={root}", "tracking=none", *sys.argv[3:]])
tower = VisionTower.from_config(cfg.model.vision)
rows = [json.loads(line) for line in open(root / "prepared/manifests/pretrain.jsonl")][:n_images]
truth = read_ground_truth(root / "world/ground_truth/pretrain.jsonl")
vocab = json.load(open(root / "world/world.json"))["vocabulary"]
words = [w.strip() for w in open(root / "prepared/wordlist.txt")]
gt = ground_truth_on_grid([truth[r["image"]] for r in rows], [r["id"] for r in rows], tower.grid, words)
bg_words = torch.tensor([words.index(w) for w in vocab["backgrounds"] + ["background"] if w in words])
keys = ("top1", "top1_color", "top1_shape", "label_precision", "fg_labelled", "bg_unlabelled")
with torch.no_grad():
    text = embed_words(tower, words)
    for feature in ("maskclip", "proj"):
        feats = torch.cat(
            [
                patch_features(tower, im, feature)
                for _, im in iter_batches(rows, root / "world", tower.preprocess, 64)
            ]
        )
        sims = feats @ text.T
        if os.environ.get("CENTER"):
            sims = sims - sims.reshape(-1, sims.shape[-1]).mean(0)
        scores, ids = sims.topk(10, dim=-1)
        ids = ids if os.environ.get("CENTER") else torch.where(scores > 0, ids, -1)
        mean = torch.nn.functional.normalize(feats.mean(1, keepdim=True), dim=-1)
        like_mean = (feats * mean).sum(-1)
        for name in ("none", "word", "ms0.8", "ms0.85", "ms0.9", "ms0.8+word", "ms0.85+word", "ms0.9+word"):
            kept = ids.clone()
            if "word" in name:
                kept[torch.isin(kept[..., 0], bg_words)] = -1
            if name.startswith("ms"):
                kept[like_mean > float(name[2:].split("+")[0])] = -1
            m = evaluate(kept, gt)
            print(f"{feature:8s} {name:12s} " + " ".join(f"{k}={m[k]:.3f}" for k in keys), flush=True)
