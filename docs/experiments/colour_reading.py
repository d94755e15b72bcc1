# usage: colour_reading.py SRC DST N [overrides]: DST/world = SRC/world with corpus.txt = SRC's corpus + N chat lines
# "SYS USER: <64 per-patch words: object patch -> its colour, background -> background colour> Is there a {c}
# object in this image? Answer ... ASSISTANT:<TAB> Yes/No" over fresh scenes (half present, half absent colours)
import sys, os, json, tempfile, random
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/main")
from omegaconf import OmegaConf
from sea.config import compose
from sea.world.config import validate_world_config
from sea.world.generate import render_split
from sea.data.templates import VICUNA_SYSTEM
src, dst, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
cfg = compose(["tracking=none", *sys.argv[4:]])
wcfg = validate_world_config(OmegaConf.to_container(cfg.data.world, resolve=True))
(dst / "world").mkdir(parents=True, exist_ok=True)
for p in (src / "world").iterdir():
    if p.name != "corpus.txt" and not (dst / "world" / p.name).exists():
        os.symlink(p.resolve(), dst / "world" / p.name)
scenes, _ = render_split(wcfg, 4242, "pretrain", n, Path(tempfile.mkdtemp()))
r = random.Random(0)
T = ("Is there a {c} object in this image?", "Does this image contain something {c}?", "Is there a {c} object in the image?")
lines, test = [], []
for i, s in enumerate(scenes):
    objs = {o.index: o for o in s.objects}
    soup = " ".join(s.background if k == 0 else objs[k].color for row in s.patch_objects for k in row)
    present = sorted({objs[k].color for row in s.patch_objects for k in row if k})
    if not present:
        continue
    ask = r.choice(present) if r.random() < 0.5 else r.choice([c for c in wcfg.colors if c not in present])
    q = r.choice(T).format(c=ask) + " Answer the question using a single word or phrase."
    prompt = f"{VICUNA_SYSTEM} USER: {soup} {q} ASSISTANT:"
    a = "Yes" if ask in present else "No"
    (test if i >= n - 400 else lines).append((prompt, a))
corpus = (src / "world/corpus.txt").read_text().splitlines()
(dst / "world/corpus.txt").write_text("\n".join([p + "\t " + a for p, a in lines] + corpus) + "\n")
(dst / "test.json").write_text(json.dumps([(p, a.lower()) for p, a in test]))
print(len(lines), "reading lines,", len(test), "test")
