# usage: reading_eval.py LM_DIR SOUP_MODE [overrides]: a text LM's short-answer accuracy on reading prompts of 200 fresh
# scenes (existence, colour, shape questions; SOUP_MODE random | alt | color, see below), greedy first word
import sys, json, random, tempfile
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "/work/main")
from transformers import AutoTokenizer, AutoModelForCausalLM
from omegaconf import OmegaConf
from sea.config import compose
from sea.world.config import validate_world_config
from sea.world.generate import render_split
from sea.world import language as L
from sea.data.templates import VICUNA_SYSTEM
lm_dir, mode = sys.argv[1], sys.argv[2]
cfg = compose(["tracking=none", *sys.argv[3:]])
wcfg = validate_world_config(OmegaConf.to_container(cfg.data.world, resolve=True))
tok = AutoTokenizer.from_pretrained(lm_dir); lm = AutoModelForCausalLM.from_pretrained(lm_dir).eval()
scenes, _ = render_split(wcfg, 999, "eval", 200, Path(tempfile.mkdtemp()))
r2 = random.Random(1); rng = np.random.default_rng(1)
def soup(s, mode, r2):
    objs = {o.index: o for o in s.objects}
    seen = {}
    out = []
    for row in s.patch_objects:
        for k in row:
            if k == 0:
                out.append(s.background); continue
            o = objs[k]
            if mode == "random":
                out.append(r2.choice([o.color, o.shape]))
            elif mode == "alt":  # alternate colour / shape over the object's patches in raster order
                n = seen.get(k, 0); seen[k] = n + 1
                out.append(o.color if n % 2 == 0 else o.shape)
            elif mode == "color":
                out.append(o.color)
    return " ".join(out)


res = {}
for s in scenes:
    for kind in ("existence", "color", "shape"):
        qa = L.ASKERS[kind](s, wcfg, rng)
        if qa is None: continue
        prompt = " ".join(f"{VICUNA_SYSTEM} USER: {soup(s, mode, r2)} {qa.question} {L.SHORT_SUFFIX.strip()} ASSISTANT:".split())
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            out = lm.generate(ids, max_new_tokens=3, do_sample=False)
        a = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip().lower()
        res.setdefault(kind, []).append(a.split(" ")[0].strip(".") == qa.short.lower())
print({k: round(sum(v) / len(v), 3) for k, v in res.items()}, {k: len(v) for k, v in res.items()})
