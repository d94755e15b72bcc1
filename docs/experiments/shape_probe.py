# usage: shape_probe.py ROOT [overrides]: per-patch top-1 of the tiny CLIP (maskclip, proj) raw / word-centred / z-scored
# against ground truth on 300 pretrain images, and the top-1 among the five shape words only (chance 0.2)
import sys, json, torch
sys.path.insert(0, "/work/main")
from pathlib import Path
from sea.config import compose
from omegaconf import OmegaConf
from sea.models.vision import VisionTower
from sea.labeling.text import read_words, word_embeddings
from sea.labeling.patches import sample_features
from sea.labeling.quality import read_ground_truth, ground_truth_on_grid, evaluate
root = sys.argv[1]
cfg = compose([f"paths.root={root}", "tracking=none", *sys.argv[2:]])
tower = VisionTower.from_config(OmegaConf.to_container(cfg.model.vision, resolve=True))
words = read_words(Path(root) / "prepared/wordlist.txt")
text, _ = word_embeddings(tower, words)
rows = [json.loads(l) for l in open(f"{root}/prepared/manifests/pretrain.jsonl")][:300]
truth = read_ground_truth(f"{root}/world/ground_truth/pretrain.jsonl")
gt = ground_truth_on_grid([truth[r["image"]] for r in rows], [r["id"] for r in rows], tower.grid, words)
feats = sample_features(tower, rows, f"{root}/world", 64)
for feature in ("maskclip", "proj"):
    f = feats[feature]; sim = f @ text.float().T
    flat = sim.reshape(-1, sim.shape[-1])
    for name, s in (("raw", sim), ("center", sim - flat.mean(0)), ("zscore", (sim - flat.mean(0)) / flat.std(0))):
        ids = s.topk(1, dim=-1).indices
        m = evaluate(ids, gt)
        print(feature, name, {k: round(m[k], 3) for k in ("top1", "top1_color", "top1_shape")})
shapes = [words.index(w) for w in ("circle", "square", "triangle", "star", "cross")]
fg = gt.objects > 0
for feature in ("maskclip", "proj"):
    f = feats[feature]; sim = f @ text.float().T
    for name, s in (("raw", sim), ("center", sim - sim.reshape(-1, sim.shape[-1]).mean(0))):
        best = torch.tensor(shapes)[s[..., shapes].argmax(-1)]
        acc = (best == gt.words[..., 1])[fg].float().mean().item()
        print(feature, name, "shape-only top-1 on object patches", round(acc, 3), "(chance 0.2)")
