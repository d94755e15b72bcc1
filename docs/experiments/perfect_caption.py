# "perfect adapter": visual tokens = LM word embeddings of ground-truth words; can the frozen LM caption?
import sys, json, torch
from pathlib import Path
from sea.config import compose
from sea.models.mllm import SeaMLLM
from sea.eval.grounding import stage1_captions, score_captions
root = sys.argv[1]; mode = sys.argv[2]; scale = float(sys.argv[3])
cfg = compose([f"paths.root={root}", "tracking=none"])
m = SeaMLLM.from_config(cfg); m.eval()
rows=[json.loads(l) for l in open(Path(root)/"world/ground_truth/eval.jsonl")][:64]
tok = m.tokenizer; E = m.llm.get_input_embeddings().weight.detach()
def wemb(w):
    ids = tok.encode(" " + w, add_special_tokens=False)
    return E[ids].mean(0)
def tokens(r):
    g = r["grid"]; out = []
    objs = {o["index"]: o for o in r["objects"]}
    for i in range(g):
        for j in range(g):
            k = r["patch_objects"][i][j]
            if k == 0:
                v = wemb(r["background"]) if mode != "zero_bg" else torch.zeros(E.shape[1])
            else:
                o = objs[k]
                v = (wemb(o["color"]) + wemb(o["shape"])) if mode != "alt" else (wemb(o["color"]) if (i + j) % 2 else wemb(o["shape"]))
            out.append(v * scale)
    return torch.stack(out)
import random; random.seed(0)
def tokens2(r):
    g = r["grid"]; objs = {o["index"]: o for o in r["objects"]}
    return torch.stack([wemb(r["background"]) if k == 0 else wemb(random.choice([objs[k]["color"], objs[k]["shape"]])) for row in r["patch_objects"] for k in row]) * scale
if mode == "mix": tokens = tokens2
V = {i: tokens(r) for i, r in enumerate(rows)}
m.encode_images = lambda px: torch.stack([V[int(p.flatten()[0].item())] for p in px])
pix = [torch.full((3, 4, 4), float(i)) for i in range(len(rows))]
caps = stage1_captions(m, pix, 16, 32)
print(caps[:4])
print(mode, scale, {k: round(v, 1) for k, v in score_captions(caps, rows).items() if "f1" in k})
