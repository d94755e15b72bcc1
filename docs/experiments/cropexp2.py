import sys, json, torch
from pathlib import Path
from PIL import Image
from sea.config import compose
from sea.models.vision import VisionTower
from sea.labeling.text import embed_words
from sea.labeling.quality import read_ground_truth, ground_truth_on_grid, evaluate
R=Path(sys.argv[1]); crop=int(sys.argv[2]); stride=int(sys.argv[3])
cfg=compose([f"paths.root={R}","tracking=none"])
tower=VisionTower.from_config(cfg.model.vision)
rows=[json.loads(l) for l in open(R/'prepared/manifests/pretrain.jsonl')][:150]
truth=read_ground_truth(R/'world/ground_truth/pretrain.jsonl')
words=[w.strip() for w in open(R/'prepared/wordlist.txt')]
vocab=json.load(open(R/'world/world.json'))['vocabulary']
bgw=set(vocab['backgrounds']+['background'])
T=embed_words(tower, words)
gt=ground_truth_on_grid([truth[r['image']] for r in rows],[r['id'] for r in rows],(8,8),words)
ids=torch.full((len(rows),64,10),-1); top=torch.zeros(len(rows),64); bgs=torch.zeros(len(rows),64)
with torch.no_grad():
  for b,r in enumerate(rows):
    im=Image.open(R/'world'/r['image']).convert('RGB')
    crops=[];centers=[]
    for y in range(0,64-crop+1,stride):
      for x in range(0,64-crop+1,stride):
        crops.append(tower.preprocess(im.crop((x,y,x+crop,y+crop)))); centers.append((x,y))
    E=tower.encode_image(torch.stack(crops))
    S=E@T.T
    # each patch takes the crop whose centre is nearest
    for p in range(64):
      py,px=(p//8)*8+4,(p%8)*8+4
      j=min(range(len(centers)),key=lambda k:(centers[k][0]+crop/2-px)**2+(centers[k][1]+crop/2-py)**2)
      s,i=S[j].topk(10)
      top[b,p]=s[0]; bgs[b,p]=max(S[j][words.index(w)] for w in bgw if w in words)
      ids[b,p]=i
m=evaluate(ids,gt)
print(crop,stride," ".join(f"{k}={v:.3f}" for k,v in m.items()))

fg=gt.objects>0
from sklearn.metrics import roc_auc_score
print('auc top1', roc_auc_score(fg.flatten().numpy(), top.flatten().numpy()), 'auc margin', roc_auc_score(fg.flatten().numpy(), (top-bgs).flatten().numpy()))
for q in (0.3,0.5,0.6,0.7,0.8):
  thr=torch.quantile(top.flatten(),q)
  ids2=ids.clone(); ids2[top>torch.quantile(top.flatten(),1-q)]=-1
  m=evaluate(ids2,gt); print('lowtop',q, " ".join(f"{k}={v:.3f}" for k,v in m.items() if k in ('top1','label_precision','fg_labelled','bg_unlabelled')))
  mg=top-bgs; ids2=ids.clone(); ids2[mg<torch.quantile(mg.flatten(),q)]=-1
  m=evaluate(ids2,gt); print(q, " ".join(f"{k}={v:.3f}" for k,v in m.items() if k in ('top1','label_precision','fg_labelled','bg_unlabelled')))
