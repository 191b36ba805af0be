#!/usr/bin/env bash
# The GPU check in one go, for anyone with one NVIDIA GPU (sized for about 10-15 minutes on an 80 GB card), and the
# body of .github/workflows/gpu.yml:
#   1. install into .venv with the machine's CUDA build of torch (TORCH=..., default: PyPI's `torch`);
#   2. the model benchmark at the base preset, batch 64, bf16, attention through SDPA and through transformers' eager
#      code: ms/step, achieved TFLOP/s and % of the card's measured bf16 matmul peak (8192^3) for each, about a
#      minute (BENCH_COMPILE=1 adds torch.compile rows: a few more minutes of compiling);
#   3. the report at scale=gpu: a 4x world, CLIP / BLIP / FUSAR-KLIP with the full tiny preset at batch 64 in bf16,
#      the floors, every task; its executed notebook, tables and figures go to OUT/report;
#   4. fail if a headline figure is missing or not finite (tools/check_report.py).
# usage: bash tools/gpu_check.sh [OUT_DIR]      (env: SEEDS="0, 1", TORCH="torch --index-url ...", BENCH_COMPILE=1)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-out}; SEEDS=${SEEDS:-0}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
nvidia-smi | tee "$OUT/nvidia-smi.txt"
make install TORCH="${TORCH:-torch}"
BIN=.venv/bin
$BIN/python - <<'PY' | tee "$OUT/torch.txt"
import torch
assert torch.cuda.is_available(), "torch sees no CUDA GPU: install a CUDA build (make install TORCH='torch --index-url ...')"
print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))
PY
$BIN/python bench/bench_model.py --config base --batch 64 --device cuda --bf16 --attn sdpa,eager \
    ${BENCH_COMPILE:+--compile} --json "$OUT/bench_model.json" | tee "$OUT/bench_model.txt"
$BIN/papermill -k python3 --language python --cwd nbs/experiments nbs/experiments/report.ipynb "$OUT/report.ipynb" \
    -p scale gpu -y "seeds: [$SEEDS]" -p out_dir "$OUT/report"
$BIN/python tools/check_report.py "$OUT/report"
