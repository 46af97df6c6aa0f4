#!/bin/bash
# The design pilots of the MNIST stack's MMSE decoders, on the 5,000 held-out
# training digits (each run's metrics.json and train_log.csv; copied to design/).
# usage: bash zoo/results/training/mmse/design.sh DATA_ROOT RUN_DIR
set -euo pipefail
DATA=${1:?data root (holding MNIST/raw)}
OUT=${2:?run folder}
export OMP_NUM_THREADS=1
T="nice -n 5 python -m compressai_hqa.training.mmse train --data-root $DATA -q --resume"
# the learning rate of the path, layer 4, 600 steps
for lr in 1e-3 3e-4; do
  $T --output "$OUT/lr$lr" --layer 4 --kind path --steps 600 --lr $lr
done
# the fine-tuned path against a fresh network, layer 4, 1000 steps each at 1e-3
$T --output "$OUT/cmp" --layer 4 --kind path --steps 1000 --lr 1e-3
$T --output "$OUT/cmp" --layer 4 --kind net --steps 1000 --lr 1e-3
# layer 5 (one code per digit): the table of conditional means against the path
$T --output "$OUT/cmp" --layer 5 --kind table
$T --output "$OUT/cmp" --layer 5 --kind path --steps 1000 --lr 1e-3
