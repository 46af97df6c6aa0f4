#!/bin/bash
# The shipped MMSE decoders of the MNIST stack (zoo/hqa-mnist-mmse-<sha8>.pth):
# layer 5 the table of conditional means, layers 1-4 the fine-tuned decoding path
# (choices and learning rate from design.sh, on the 5,000 held-out digits).
# Resumable: run it again after an interruption.
# usage: bash zoo/results/training/mmse/train.sh DATA_ROOT RUN_DIR
set -euo pipefail
DATA=${1:?data root (holding MNIST/raw)}
OUT=${2:?run folder}
export OMP_NUM_THREADS=1
M="nice -n 5 python -m compressai_hqa.training.mmse"
T="$M train --data-root $DATA --output $OUT --resume -q"
$T --layer 5 --kind table
$T --layer 4 --kind path --steps 2000 --lr 3e-4
$T --layer 3 --kind path --steps 4000 --lr 3e-4
$T --layer 2 --kind path --steps 1000 --lr 3e-4
$T --layer 1 --kind path --steps 1000 --lr 3e-4
$M export "$OUT"/layer5-table/model.pth "$OUT"/layer{4,3,2,1}-path/model.pth \
  -o "$OUT/hqa-mnist-mmse.pth"
$M evaluate --data-root "$DATA" --mmse "$OUT/hqa-mnist-mmse.pth" \
  --json "$OUT/eval.json"
