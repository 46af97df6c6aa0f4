#!/usr/bin/env bash
# The 16,000-step runs (4x the sweep's 4,000; same recipe, the learning-rate drop
# at 70 % of the steps) at the widths the held-out digits chose, where the
# frontier's goals compare (lambda 2.5e-5: ~15-20 bits per digit). frontier.py
# scores each lambda at its run of lowest held-out loss across both folders.
#   bash benchmarks/results/compressai-16k/run.sh [DATA_ROOT] [OUT]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-$HOME/runs/compressai-long}
export OMP_NUM_THREADS=1
B() { python benchmarks/compressai_baselines.py train --data-root "$DATA" --output "$OUT" -q --steps 16000 "$@"; }
B --model mbt2018-mean --lmbda 2.5e-5 --N 16 --M 24
B --model bmshj2018-hyperprior --lmbda 2.5e-5 --N 8 --M 12
B --model bmshj2018-factorized --lmbda 2.5e-5 --N 16 --M 24
python benchmarks/compressai_baselines.py collect --output "$OUT" \
    --dest benchmarks/results/compressai-16k
