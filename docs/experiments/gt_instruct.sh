#!/bin/bash
# usage: gtinstr.sh ROOT ARM TAG [overrides] -- instruct+evaluate (GT features) into ROOT (align reused)
R=$1; A=$2; T=$3; shift 3
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GT_ROOT=$R
cd "$(dirname "$0")/../.."
rm -rf $R/instruct/seed0/$A $R/checkpoints/instruct/seed0/$A $R/evaluate/seed0/$A
for st in instruct evaluate; do
  .venv/bin/python ${FEAT:-docs/experiments/gtfeat.py} $st --arm $A paths.root=$R tracking=none align.log.progress=false instruct.log.progress=false "$@" > $R/$st-$A-$T.log 2>&1 || { echo "FAIL $st"; tail -5 $R/$st-$A-$T.log; exit 1; }
done
python3 - $R $A $T <<'PY'
import json,sys
m=json.load(open(f"{sys.argv[1]}/metrics/evaluate/seed0-{sys.argv[2]}.json"))
keys=['gqa/accuracy','pope/accuracy','pope/yes_ratio','mme/perception','mmbench/accuracy','mmbench/circular_accuracy']
print(sys.argv[3], {k:round(m[k],2) for k in keys if k in m})
PY
