# usage: dense_retrieval.py SRC DST N: DST/world = SRC/world with corpus.txt replaced by N lines "USER: <16 colour /
# background words> Is there a {c} object in the image? ASSISTANT:<TAB> Yes/No" (nothing else), DST/test.json 400 held out
# dense retrieval corpus: "USER: <soup of 16 colour/background words> Is there a {c} object in the image? ASSISTANT:\t Yes/No"
import sys, random
from pathlib import Path
src, dst, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
colors = "red green blue yellow purple orange white".split(); bgs = "black gray brown navy".split()
r = random.Random(0); lines = []
for _ in range(n):
    bg = r.choice(bgs); present = r.sample(colors, r.randint(1, 3))
    cells = [bg] * 16
    for c in present:
        for j in r.sample(range(16), r.randint(1, 3)): cells[j] = c
    present = [c for c in present if c in cells]
    ask = r.choice(present) if r.random() < 0.5 else r.choice([c for c in colors if c not in present])
    lines.append(f"USER: {' '.join(cells)} Is there a {ask} object in the image? ASSISTANT:\t {'Yes' if ask in present else 'No'}")
(dst / "world").mkdir(parents=True, exist_ok=True)
import os
for p in (src / "world").iterdir():
    if p.name != "corpus.txt" and not (dst / "world" / p.name).exists(): os.symlink(p.resolve(), dst / "world" / p.name)
(dst / "world/corpus.txt").write_text("\n".join(lines) + "\n")
# held-out test lines
test = []
for _ in range(400):
    bg = r.choice(bgs); present = r.sample(colors, r.randint(1, 3)); cells = [bg] * 16
    for c in present:
        for j in r.sample(range(16), r.randint(1, 3)): cells[j] = c
    present = [c for c in present if c in cells]
    ask = r.choice(present) if r.random() < 0.5 else r.choice([c for c in colors if c not in present])
    test.append((f"USER: {' '.join(cells)} Is there a {ask} object in the image? ASSISTANT:", 'yes' if ask in present else 'no'))
import json; (dst / "test.json").write_text(json.dumps(test))
