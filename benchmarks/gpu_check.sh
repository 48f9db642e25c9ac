#!/usr/bin/env bash
# The QLoRA GRPO check on one CUDA GPU, offline, as one command (at most 8 minutes):
#
#   bash benchmarks/gpu_check.sh              # → benchmarks/results/gpu_check.json
#   bash benchmarks/gpu_check.sh --dry-run    # wheels list + arguments only (CPU tests run this)
#   PYTHON=python3.12 bash benchmarks/gpu_check.sh --sizes tiny --steps 3
#
# Needs torch (CUDA), transformers, peft, accelerate; trl and bitsandbytes come from the wheels in
# benchmarks/.gpu_wheels/ (listed with size and sha256 in benchmarks/gpu_wheels.txt) when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# 8 minutes for everything; the Python side writes each size's figures as it finishes them.
exec timeout --signal=TERM 480 "$PY" "$ROOT/benchmarks/gpu_check.py" "$@"
