import sys, json, torch
from pathlib import Path
from sea.config import compose
from sea.models.mllm import SeaMLLM
from sea.models.adapter import load_adapter
from sea.data.llava import open_image, preprocess_image
root, arm = sys.argv[1:3]
cfg = compose([f"paths.root={root}", "tracking=none"])
m = SeaMLLM.from_config(cfg); load_adapter(Path(root)/"align/seed0"/arm/"adapter.safetensors", m.adapter); m.eval()
rows=[json.loads(l) for l in open(Path(root)/"world/ground_truth/eval.jsonl")][:64]
px=torch.stack([preprocess_image(m.vision, open_image(Path(root)/"world"/r["image"], r["id"]), "none") for r in rows])
with torch.no_grad():
    f=m.vision(px); v=m.adapter(f)
    emb=m.llm.get_input_embeddings().weight
    print("vision feat norm", f.norm(dim=-1).mean().item(), "std across images", f.mean(1).std(0).mean().item())
    print("visual token norm", v.norm(dim=-1).mean().item(), "word emb norm", emb.norm(dim=-1).mean().item())
    vv=torch.nn.functional.normalize(v.mean(1),dim=-1); print("mean cos between images' mean visual tokens", (vv@vv.T).mean().item())
    F=f.reshape(-1,f.shape[-1])
    mu=F.mean(0)
    print("energy of shared mean", (mu.norm()**2/(F.norm(dim=-1)**2).mean()).item())
    print("top channel |mu|", mu.abs().topk(5).values.tolist())
    C=F-mu; var=C.var(0); print("variance share of top5 channels", (var.topk(5).values.sum()/var.sum()).item())
    # per-token layernorm then shared mean energy
    G=torch.nn.functional.layer_norm(F,(F.shape[-1],)); mg=G.mean(0); print("after LN: shared energy", (mg.norm()**2/(G.norm(dim=-1)**2).mean()).item())
    M=v.mean(0,keepdim=True); print("adapter out: image-varying energy share", ((v-M).norm()**2/v.norm()**2).item())
    Mf=f.mean(0,keepdim=True); print("vision feat: image-varying energy share", ((f-Mf).norm()**2/f.norm()**2).item())
    n=torch.nn.functional.normalize(v,dim=-1); print("cos same patch pos across images", (n[0]*n[1]).sum(-1).mean().item(), (n[0]*n[5]).sum(-1).mean().item())
