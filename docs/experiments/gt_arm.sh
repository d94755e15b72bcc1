#!/bin/bash
# usage: gtarm.sh ROOT ARM [overrides...] -- align, instruct, evaluate with ground-truth features
R=$1; A=$2; shift 2
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GT_ROOT=$R
cd "$(dirname "$0")/../.."
for st in align instruct evaluate; do
  .venv/bin/python docs/experiments/gtfeat.py $st --arm $A paths.root=$R tracking=none align.log.progress=false instruct.log.progress=false "$@" > $R/$st-$A.log 2>&1 || { echo "FAIL $st"; tail -5 $R/$st-$A.log; exit 1; }
done
python3 - $R $A <<'PY'
import json,sys
m=json.load(open(f"{sys.argv[1]}/metrics/evaluate/seed0-{sys.argv[2]}.json"))
keys=['gqa/accuracy','pope/accuracy','pope/yes_ratio','pope/f1','mme/perception','mmbench/accuracy','mmbench/circular_accuracy']
print({k:round(m[k],2) for k in keys if k in m})
print({k:round(v,1) for k,v in m.items() if 'probe' in k and ('f1' in k)})
PY
