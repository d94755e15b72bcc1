# How much does the stage-2 model's answer depend on the image? logit(Yes)-logit(No) on POPE questions
# with the right image vs another image (ground-truth features patched in, GT_ROOT set).
import os, sys, json, torch
sys.argv = [sys.argv[0]] + sys.argv[1:]
from pathlib import Path
import importlib.util
spec = importlib.util.spec_from_file_location("gtfeat", str(Path(__file__).with_name("gtfeat.py"))); g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)
from pathlib import Path
from PIL import Image
from sea.models.mllm import SeaMLLM
from sea.data.templates import build_prompt_for_generation
root = Path(os.environ["GT_ROOT"]); arm = sys.argv[1]
m = SeaMLLM.load(root / "instruct/seed0" / arm); m.eval()
tok = m.tokenizer
qs = [json.loads(l) for l in open(root / "world/eval/pope/coco/coco_pope_random.json")][:80]
yes, no = tok.encode(" Yes", add_special_tokens=False)[0], tok.encode(" No", add_special_tokens=False)[0]
def px(name): return m.vision.preprocess(Image.open(root / "world/eval/images" / name).convert("RGB"))
d_right, d_wrong, acc = [], [], 0
with torch.no_grad():
    for i, q in enumerate(qs):
        ids = build_prompt_for_generation([{"from": "human", "value": "<image>\n" + q["text"] + "\nAnswer the question using a single word or phrase."}], tok, "vicuna_v1", has_image=True)
        x = torch.tensor([ids])
        other = qs[(i + 7) % len(qs)]["image"]
        for name, store in ((q["image"], d_right), (other, d_wrong)):
            out = m(input_ids=x, images=px(name).unsqueeze(0))
            lg = out.logits[0, -1]
            store.append(float(lg[yes] - lg[no]))
        acc += (d_right[-1] > 0) == (q["label"] == "yes")
import statistics as st
print("yes-no logit: mean", round(st.mean(d_right), 3), "sd over questions", round(st.pstdev(d_right), 3),
      "| mean |right - other image|", round(st.mean(abs(a - b) for a, b in zip(d_right, d_wrong)), 3), "| acc at 0:", acc / len(qs))
yes_d = [d for d, q in zip(d_right, qs) if q["label"] == "yes"]; no_d = [d for d, q in zip(d_right, qs) if q["label"] == "no"]
print("mean yes-no logit on yes questions", round(st.mean(yes_d), 3), "on no questions", round(st.mean(no_d), 3))
