# usage: dense_retrieval_eval.py ROOT: yes/no accuracy of ROOT/backbones/llm on ROOT/test.json (logit of " Yes" vs " No")
import sys, json, torch
from transformers import AutoTokenizer, AutoModelForCausalLM
d = sys.argv[1]; tok = AutoTokenizer.from_pretrained(d + "/backbones/llm"); lm = AutoModelForCausalLM.from_pretrained(d + "/backbones/llm").eval()
test = json.load(open(d + "/test.json")); right = yes = 0
for p, a in test:
    ids = tok(p, return_tensors="pt").input_ids
    with torch.no_grad(): nxt = lm(ids).logits[0, -1]
    y, n = tok.encode(" Yes", add_special_tokens=False)[-1], tok.encode(" No", add_special_tokens=False)[-1]
    ans = "yes" if nxt[y] > nxt[n] else "no"; right += ans == a; yes += ans == "yes"
print("dense retrieval acc", right / len(test), "yes", yes / len(test))
