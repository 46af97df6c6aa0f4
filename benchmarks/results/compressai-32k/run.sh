#!/usr/bin/env bash
# The 32,000-step runs: the CompressAI points that the goals compare (up to 128
# bits per digit) and lambda 6.25e-4 for mbt2018-mean and bmshj2018-hyperprior
# (132 and 148 bits at 16,000 steps, just above), trained twice as long as the
# 16,000-step runs, same recipe (the learning-rate drop at 70 % of the steps) and
# widths, from scratch. frontier.py reads this folder among its --runs (each lambda scored at its run of lowest
# held-out loss); its "Training length" table shows 4,000, 16,000 and 32,000 steps
# side by side. In the order run, two side by side on two cores (N8/N16 15-25 min,
# N32 45-50 min each). Resumable: a finished run is skipped, a stopped one continues.
#   bash benchmarks/results/compressai-32k/run.sh [DATA_ROOT] [OUT]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-$HOME/runs/compressai-32k}
export OMP_NUM_THREADS=1
B() { python benchmarks/compressai_baselines.py train --data-root "$DATA" --output "$OUT" -q --steps 32000 "$@"; }
B --model mbt2018-mean --lmbda 2.5e-5 --N 16 --M 24
B --model mbt2018-mean --lmbda 1.25e-4 --N 32 --M 48
B --model bmshj2018-factorized --lmbda 1.25e-4 --N 32 --M 48
B --model bmshj2018-hyperprior --lmbda 2.5e-5 --N 8 --M 12
B --model mbt2018-mean --lmbda 6.25e-4 --N 16 --M 24
B --model bmshj2018-factorized --lmbda 2.5e-5 --N 16 --M 24
B --model bmshj2018-hyperprior --lmbda 1.25e-4 --N 16 --M 24
B --model mbt2018-mean --lmbda 1.75e-5 --N 16 --M 24
B --model bmshj2018-hyperprior --lmbda 1.75e-5 --N 8 --M 12
B --model bmshj2018-hyperprior --lmbda 1.2e-5 --N 8 --M 12
B --model bmshj2018-hyperprior --lmbda 6.25e-4 --N 8 --M 12
python benchmarks/compressai_baselines.py collect --output "$OUT" \
    --dest benchmarks/results/compressai-32k
