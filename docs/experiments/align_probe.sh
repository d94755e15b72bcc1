#!/bin/bash
# usage: align_probe.sh ROOT ARM [overrides...]
R=$1; A=$2; shift 2
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cd "$(dirname "$0")/../.."
rm -rf $R/align/seed0/$A $R/checkpoints/align/seed0/$A
.venv/bin/python -m sea align --arm $A paths.root=$R tracking=none align.log.progress=false "$@" > $R/align-$A.log 2>&1 || { echo FAIL; tail -3 $R/align-$A.log; exit 1; }
python3 -c "
import json
L=[json.loads(l) for l in open('$R/align/seed0/$A/train_log.jsonl')]
print('loss', [round(x['loss_lm'],2) for x in L[::max(1,len(L)//8)]], round(L[-1]['loss_lm'],3))"
.venv/bin/python docs/experiments/probe.py $R $A "$@" 2>&1 | tail -1
