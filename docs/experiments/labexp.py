import sys, json, torch
from pathlib import Path
from sea.config import compose
from sea.models.vision import VisionTower
from sea.labeling.patches import patch_features, iter_batches
from sea.labeling.text import embed_words
from sea.labeling.quality import read_ground_truth, ground_truth_on_grid, evaluate
R=Path(sys.argv[1])
cfg=compose([f"paths.root={R}","tracking=none",*sys.argv[2:]])
tower=VisionTower.from_config(cfg.model.vision)
rows=[json.loads(l) for l in open(R/'prepared/manifests/pretrain.jsonl')][:400]
truth=read_ground_truth(R/'world/ground_truth/pretrain.jsonl')
vocab=json.load(open(R/'world/world.json'))['vocabulary']
feats={f:[] for f in ('maskclip','proj')}
with torch.no_grad():
  for _,im in iter_batches(rows, R/'world', tower.preprocess, 64):
    for f in feats: feats[f].append(patch_features(tower, im, f))
feats={f:torch.cat(v) for f,v in feats.items()}

lists={
 'all41': [w.strip() for w in open(R/'prepared/wordlist.txt')],
 'seen': vocab['colors']+vocab['shapes']+vocab['backgrounds']+['background'],
 'objonly': vocab['colors']+vocab['shapes'],
}
def run(name, words, f, center_word=False, center_feat=False, bgwords=()):
  with torch.no_grad():
    T=embed_words(tower, words)
    V=feats[f]
    if center_feat:
      V=torch.nn.functional.normalize(V-V.reshape(-1,V.shape[-1]).mean(0),dim=-1)
    S=V@T.T
    if center_word:
      S=S-S.reshape(-1,S.shape[-1]).mean(0)
    s,i=S.topk(min(10,len(words)),dim=-1)
    i=torch.where(s>0,i,-1) if not center_word else i
    bad=[words.index(w) for w in bgwords if w in words]
    if bad:
      drop=torch.isin(i[...,0],torch.tensor(bad))
      i[drop]=-1
    gt=ground_truth_on_grid([truth[r['image']] for r in rows],[r['id'] for r in rows],(8,8),words)
    m=evaluate(i,gt)
  print(f"{name:8s} {f:8s} cw={center_word:d} cf={center_feat:d} bgw={len(bad)} " + " ".join(f"{k}={v:.3f}" for k,v in m.items() if k in('top1','top1_color','top1_shape','label_precision','fg_labelled','bg_unlabelled')))
bg=vocab['backgrounds']+['background']
for name,words in lists.items():
  for f in ('maskclip','proj'):
    for cw in (0,1):
      for cf in (0,1):
        run(name,words,f,cw,cf)
        if name!='objonly': run(name,words,f,cw,cf,bg)
