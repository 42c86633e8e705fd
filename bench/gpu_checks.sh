#!/usr/bin/env bash
# The GPU checks in one run, for a session that is lent a CUDA machine (the device tool).
# That machine has no network: this uses its own python and torch, with rnnkit from src/ on
# PYTHONPATH, and writes what it measured under $OUT (default /tmp/gpu-checks):
#   device.txt            the GPU, torch and CUDA versions
#   cuda-tests.txt        tests/test_dropin.py's CUDA tests (values and second-order
#                         gradients on every engine against torch.nn on the CPU) and a task
#                         trained on CUDA against the same run on the CPU
#   speed-cuda.md/.json   bench/speed.py's grid on CUDA: auto (cuDNN) and rnnkit's own loops
#   cells-cuda.md         bench/cells.py on CUDA
#   task-cuda.txt         the dates task trained on CUDA (300 steps)
#   budget-cuda.txt       a 2-minute --time-budget char model on CUDA
# Run it as: bash bench/gpu_checks.sh   (about 5 minutes; --quick grid: QUICK=1)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}

$PYTHON - <<'PY' | tee "$OUT/device.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0))
PY

if $PYTHON -c "import pytest, hypothesis" 2>/dev/null; then
    $PYTHON -m pytest -q -p no:cacheprovider tests/test_dropin.py -k "cuda or trains_on_the_device" \
        tests/test_task_training.py::test_a_task_trains_on_the_device_it_is_given -rs 2>&1 \
        | tail -60 | tee "$OUT/cuda-tests.txt"
else
    echo "pytest or hypothesis is missing here: CUDA tests not run" | tee "$OUT/cuda-tests.txt"
fi

GRID=()
if [ "${QUICK:-0}" = 1 ]; then GRID=(--quick); fi
$PYTHON bench/speed.py --device cuda --only LSTM GRU RNN --engine auto bptt "${GRID[@]}" \
    --json "$OUT/speed-cuda.json" --write "$OUT/speed-cuda.md" 2>&1 | tail -40

# Every cell on CUDA: the cell grid's oracle tests run on the CPU in CI; here the cells'
# training speed beside torch.nn (cuDNN) and a linear cell's parallel scan against its
# sequential scan (bench/cells.py, CUDA rows).
$PYTHON bench/cells.py --device cuda --repeats 5 "${GRID[@]}" 2>&1 | tail -40 \
    | tee "$OUT/cells-cuda.md"

# A task trained on the GPU (the tasks take --device as the character model does), and one
# 2-minute --time-budget run of the character model: what the budget rule measures and chooses
# on this device, and the validation loss it reaches (the CPU's figures: docs/results.md).
$PYTHON -m rnnkit task dates train --device cuda --max-steps 300 --out "$OUT/task-dates-cuda" \
    2>&1 | tail -4 | tee "$OUT/task-cuda.txt"
$PYTHON -m rnnkit train --device cuda --time-budget 2 --out "$OUT/budget-2-cuda" 2>&1 \
    | tr '\r' '\n' | grep -v "^step\|it/s" | tail -8 | tee "$OUT/budget-cuda.txt"
