#!/usr/bin/env bash
# One-shot GPU measurements for the benchmarks that need CUDA, sized for a short device lease
# (the whole script ends within DEADLINE seconds; each benchmark also has its own timeout).
#
#   label_throughput.py --mfu-only       MFU of labeling, open_clip ViT-L-14-336 (random), batch 256, bf16 autocast
#   sea_overhead.py --device cuda         stage-1 step, SEA lambda=1 vs lambda=0, CLIP-L/14-336 + Vicuna-7B-sized LLM
#   model_step.py (docstring's GPU args)  SeaMLLM vs HF LlavaForConditionalGeneration fwd+bwd, bf16
#   label_throughput.py --pure-bf16       the MFU again with bf16 weights (only if time is left)
#
# Run from the repository root on a machine with CUDA, its own python3 (torch, transformers) and, if
# open_clip_torch / ftfy / wcwidth are missing there, their wheels in .whl/ (see benchmarks/GPU_RESULTS.md).
# Logs go to $OUT (default: ./gpu_out).
set -u
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
DEADLINE=${DEADLINE:-380}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PY:-python3}

if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:. || echo "wheel install FAILED"
else
  export PYTHONPATH=.
fi

{
  date -u
  nvidia-smi -L
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY - <<'EOF'
import torch, transformers, open_clip
print("python", __import__("sys").version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__,
      "open_clip", open_clip.__version__)
print("device", torch.cuda.get_device_name())
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    a @ b
torch.cuda.synchronize()
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record()
for _ in range(20):
    a @ b
e.record()
torch.cuda.synchronize()
print(f"measured bf16 matmul 8192^3: {2 * 8192**3 * 20 / (s.elapsed_time(e) / 1e3) / 1e12:.0f} TFLOP/s")
EOF
} 2>&1 | tee "$OUT/env.log"

step() {  # step NAME LIMIT_S CMD...
  local name=$1 limit=$2; shift 2
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
  grep -vE "^WARNING|warn" "$OUT/$name.log" | tail -n 12 | tee -a "$OUT/summary.txt"
  echo "--- $name: rc=$rc, $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
}

step label_mfu 120 $PY benchmarks/label_throughput.py --mfu-only
step sea_overhead 170 $PY benchmarks/sea_overhead.py --device cuda
step model_step 90 $PY benchmarks/model_step.py --device cuda --dtype bfloat16 --batch 16 --text-len 512 \
  --image-size 336 --patch 14 --vision-width 1024 --vision-layers 24 --vision-heads 16 \
  --llm-hidden 2048 --llm-layers 16 --llm-heads 16 --llm-intermediate 5632 --vocab 32000 --repeats 6
step label_mfu_pure_bf16 60 $PY benchmarks/label_throughput.py --mfu-only --pure-bf16
echo "total ${SECONDS} s" | tee -a "$OUT/summary.txt"
