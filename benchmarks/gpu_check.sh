#!/usr/bin/env bash
# Every GPU measurement of benchmarks/, in one device call (issue 17), most important first; the whole
# script ends within DEADLINE seconds (default 470) and each step has its own timeout, so a slow or broken
# step costs its own slot only. Logs go to $OUT (default ./gpu_out): env.log, summary.txt (each step's
# last lines, without the profiler tables) and one <step>.log per step: 7 files (a device call returns 8).
#
#   train       train_throughput.py   stage 1 + 2 at the Gemma-2B preset's shapes, ours vs HF Llava (item 1)
#   label       label_throughput.py   ViT-L-14-336 labeling: stage path vs bf16 vs bf16+compile, labels
#                                     compared, profile of each, loader images/s (item 2)
#   eval        eval_throughput.py    batched vs batch-1 answers at the Gemma-2B shape (item 3)
#   overhead    sea_overhead.py       SEA lambda 1 vs 0 with the noise arm (item 0, real sizes)
#   model_step  model_step.py         SeaMLLM vs HF Llava fwd+bwd, both HF vision depths (item 0)
#
# Run from the repository root on a machine with CUDA and its own python3 (torch, transformers,
# accelerate). Packages that machine lacks (open_clip_torch, ftfy, wcwidth, hydra-core, omegaconf,
# antlr4-python3-runtime) come as wheels in .whl/ (ignored by git; carry it):
#
#   python3 -m pip download --no-deps -d .whl antlr4-python3-runtime==4.9.3 ftfy==6.3.1 hydra-core==1.3.8 \
#       omegaconf==2.3.1 open_clip_torch==3.3.0 wcwidth==0.9.4     # antlr4 comes as an sdist: build its
#   python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3   # wheel, delete the .tar.gz
#
# DRY_RUN=1 prints the steps' commands without running anything (tests/benchmarks checks them).
set -u
OUT=${OUT:-gpu_out}
DEADLINE=${DEADLINE:-470}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TQDM_DISABLE=1

step() {  # step NAME LIMIT_S CMD...
  local name=$1 limit=$2; shift 2
  if [[ -n "${DRY_RUN:-}" ]]; then
    echo "$*"
    return
  fi
  local left=$((DEADLINE - SECONDS - 5))
  ((left < limit)) && limit=$left
  if ((limit < 30)); then
    echo "=== $name: SKIPPED (only ${left}s left)" | tee -a "$OUT/summary.txt"
    return
  fi
  echo "=== $name (timeout ${limit}s): $*" | tee -a "$OUT/summary.txt"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  grep -vE "^prof\||[Ww]arn" "$OUT/$name.log" | tail -n 30 | tee -a "$OUT/summary.txt"
  echo "--- $name: rc=$rc, $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
}

if [[ -z "${DRY_RUN:-}" ]]; then
  mkdir -p "$OUT"
  if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl && export PYTHONPATH=/tmp/site:. || echo "wheel install FAILED"
  else
    export PYTHONPATH=.
  fi
  {
    date -u
    nvidia-smi -L
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    $PY - <<'EOF'
import sys, torch, transformers, accelerate
print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__,
      "accelerate", accelerate.__version__)
for name in ("open_clip", "hydra", "omegaconf"):
    try:
        print(name, __import__(name).__version__)
    except Exception as err:  # the steps that need it fail; say why up front
        print(name, "MISSING:", err)
print("device", torch.cuda.get_device_name())
EOF
  } 2>&1 | tee "$OUT/env.log"
fi

step train 150 $PY benchmarks/train_throughput.py --preset sea_llava15_gemma2b --steps 6 --warmup 2
step label 130 $PY benchmarks/label_throughput.py --mfu-only --features proj \
  --variants autocast,bf16,bf16+compile --profile --loader-images 2048 --workers 12
step eval 110 $PY benchmarks/eval_throughput.py --device cuda --shape gemma2b --n-eval 6 --n-instruct 64 \
  --train-steps 120 --batch 32 --max-new-tokens 32 --repeats 2
step overhead 70 $PY benchmarks/sea_overhead.py --device cuda --repeats 8 --warmup 2
step model_step 55 $PY benchmarks/model_step.py --device cuda --dtype bfloat16 --batch 16 --text-len 512 \
  --image-size 336 --patch 14 --vision-width 1024 --vision-layers 24 --vision-heads 16 \
  --llm-hidden 2048 --llm-layers 16 --llm-heads 16 --llm-intermediate 5632 --vocab 32000 --repeats 6
[[ -z "${DRY_RUN:-}" ]] && echo "total ${SECONDS} s" | tee -a "$OUT/summary.txt"
exit 0
