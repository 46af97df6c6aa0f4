#!/usr/bin/env bash
# The 64,000-step runs: the goal-range CompressAI points (up to 128 bits per
# digit) whose 32,000-step run was still more than 5 % better than its
# 16,000-step run ("no: longer run still better" in frontier.md's training-length
# table), trained twice as long again, same recipe (the learning-rate drop at 70 %
# of the steps) and widths, from scratch. frontier.py reads this folder among its
# --runs (each lambda scored at its run of lowest held-out loss). In the order run,
# two side by side on two cores (N8 ~30 min, N16 ~52 min, N32 ~96 min each).
# Resumable: a finished run is skipped, a stopped one continues.
#   bash benchmarks/results/compressai-64k/run.sh [DATA_ROOT] [OUT]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-$HOME/runs/compressai-64k}
export OMP_NUM_THREADS=1
B() { python benchmarks/compressai_baselines.py train --data-root "$DATA" --output "$OUT" -q --steps 64000 "$@"; }
B --model mbt2018-mean --lmbda 1.25e-4 --N 32 --M 48
B --model mbt2018-mean --lmbda 1.75e-5 --N 16 --M 24
B --model mbt2018-mean --lmbda 2.5e-5 --N 16 --M 24
B --model bmshj2018-hyperprior --lmbda 1.2e-5 --N 8 --M 12
B --model bmshj2018-hyperprior --lmbda 1.25e-4 --N 16 --M 24
python benchmarks/compressai_baselines.py collect --output "$OUT" \
    --dest benchmarks/results/compressai-64k
