# usage: reading_corpus.py SRC DST N_SCENES TURNS_PER_SCENE [overrides]: DST/world = SRC/world with corpus.txt replaced by
# reading lines "SYS USER: <soup> Q ASSISTANT:<TAB> A" (soup: one word per patch, an object patch its colour or its
# shape at random) over N fresh scenes, plus SRC's corpus. Then train_lm.py DST DST backbones.llm.use_instruct=false ...
import sys, json, random, os, tempfile
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/main")
from sea.config import compose
from omegaconf import OmegaConf
from sea.world.config import validate_world_config
from sea.world.generate import render_split
from sea.world.language import instruction_turn
from sea.data.templates import VICUNA_SYSTEM
src, dst, n, per = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ov = sys.argv[5:]
cfg = compose(["tracking=none", *ov])
wcfg = validate_world_config(OmegaConf.to_container(cfg.data.world, resolve=True))
(dst / "world").mkdir(parents=True, exist_ok=True)
for p in (src / "world").iterdir():
    if p.name != "corpus.txt" and not (dst / "world" / p.name).exists():
        os.symlink(p.resolve(), dst / "world" / p.name)
tmp = Path(tempfile.mkdtemp())
scenes, _ = render_split(wcfg, 12345, "pretrain", n, tmp)
rng = np.random.default_rng(0); r2 = random.Random(0)
def soup(s):
    objs = {o.index: o for o in s.objects}
    return " ".join(s.background if k == 0 else r2.choice([objs[k].color, objs[k].shape]) for row in s.patch_objects for k in row)
lines = []
for s in scenes:
    for _ in range(per):
        t = instruction_turn(s, wcfg, rng)
        if t is None: continue
        q, a = t[0], t[1]
        lines.append(" ".join(f"{VICUNA_SYSTEM} USER: {soup(s)} {q} ASSISTANT:".split()) + "\t " + " ".join(a.split()))
r2.shuffle(lines)
corpus = (src / "world/corpus.txt").read_text().splitlines()
(dst / "world/corpus.txt").write_text("\n".join(lines + corpus) + "\n")
print(len(lines), "reading lines")
