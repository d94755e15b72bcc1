# perfect visual tokens (word embeddings of each patch's GT word) + POPE questions in the chat template
import sys, json, torch, random
from pathlib import Path
from sea.config import compose
from sea.models.mllm import SeaMLLM
from sea.data.templates import build_prompt_for_generation, end_of_turn_ids
root = sys.argv[1]
cfg = compose([f"paths.root={root}", "tracking=none", *sys.argv[2:]])
m = SeaMLLM.from_config(cfg); m.eval()
tok = m.tokenizer; E = m.llm.get_input_embeddings().weight.detach()
gt = {Path(json.loads(l)["image"]).name: json.loads(l) for l in open(Path(root)/"world/ground_truth/eval.jsonl")}
def wemb(w): return E[tok.encode(" " + w, add_special_tokens=False)].mean(0)
random.seed(0)
def tokens(r):
    objs = {o["index"]: o for o in r["objects"]}
    return torch.stack([wemb(r["background"]) if k == 0 else wemb(random.choice([objs[k]["color"], objs[k]["shape"]])) for row in r["patch_objects"] for k in row])
qs = []
for split in ("random", "adversarial"):
    qs += [json.loads(l) for l in open(Path(root)/f"world/eval/pope/coco/coco_pope_{split}.json")][:100]
V = [tokens(gt[q["image"]]) for q in qs]
m.encode_images = lambda px: torch.stack([V[int(p.flatten()[0].item())] for p in px])
eos = end_of_turn_ids(tok, "vicuna_v1"); right = 0; yes = 0
for s in range(0, len(qs), 25):
    chunk = qs[s:s+25]
    prompts = [build_prompt_for_generation([{"from": "human", "value": "<image>\n" + q["text"] + "\nAnswer the question using a single word or phrase."}], tok, "vicuna_v1", has_image=True) for q in chunk]
    out = m.generate(prompts, images=[torch.full((3, 4, 4), float(s + i)) for i in range(len(chunk))], max_new_tokens=4, eos_token_ids=eos)
    for q, o in zip(chunk, out):
        a = tok.decode(o, skip_special_tokens=True).strip().lower()
        yes += a.startswith("yes"); right += a.startswith(q["label"])
print("perfect-soup POPE acc", right / len(qs), "yes ratio", yes / len(qs))
