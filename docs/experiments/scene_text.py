# corpus + scene-text lines in the stage formats: plain "soup<TAB>caption" and vicuna chat "SYS USER: soup\nQ ASSISTANT:<TAB> A"
import sys, json, random, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from sea.data.templates import VICUNA_SYSTEM
src, dst = Path(sys.argv[1]), Path(sys.argv[2]); mode = sys.argv[3] if len(sys.argv) > 3 else "mix"
(dst / "world").mkdir(parents=True, exist_ok=True)
for p in (src / "world").iterdir():
    if p.name != "corpus.txt" and not (dst / "world" / p.name).exists():
        os.symlink(p.resolve(), dst / "world" / p.name)
rng = random.Random(0)
def soup(r):
    objs = {o["index"]: o for o in r["objects"]}
    w = []
    for row in r["patch_objects"]:
        for k in row:
            if k == 0: w.append(r["background"])
            else:
                o = objs[k]; w.append(rng.choice([o["color"], o["shape"]]))
    return " ".join(w)
lines = []
gt = {json.loads(l)["image"]: json.loads(l) for l in open(src / "world/ground_truth/pretrain.jsonl")}
for s in json.load(open(src / "world/pretrain.json")):
    lines.append(soup(gt[s["image"]]) + "\t" + s["conversations"][1]["value"])
gti = {json.loads(l)["image"]: json.loads(l) for l in open(src / "world/ground_truth/instruct.jsonl")}
for s in json.load(open(src / "world/instruct.json")):
    if "image" not in s: continue
    t = s["conversations"]
    for q, a in zip(t[::2], t[1::2]):
        qq = q["value"].replace("<image>", "").strip()
        lines.append(f"{VICUNA_SYSTEM} USER: {soup(gti[s['image']])}\n{qq} ASSISTANT:\t {a['value']}")
rng.shuffle(lines)
corpus = (src / "world/corpus.txt").read_text().splitlines()
(dst / "world/corpus.txt").write_text("\n".join(lines + corpus) + "\n")
print(len(lines), "scene lines")
