#!/usr/bin/env bash
# The decode temperature of an MNIST stack at 8 bits (issue 9; v2 here, v3 in
# v3/): stochastic decodes draw every lower layer's code from softmax(logits / T)
# instead of the posterior itself (T = 1, the paper). Scored on the last 5,000
# training digits, which training held out (the test set is never used for this
# choice): per T, the sampled decodes' MSE, class error and per-pixel spread on all
# 5,000, and rFID on the first 1,000 (seed 0).
#
#   bash zoo/results/temperature/run.sh ../shared/data zoo/hqa-mnist-90f6667d.pth
#   TEMPERATURE_RESULTS=zoo/results/temperature/v3 \
#       bash zoo/results/temperature/run.sh ../shared/data zoo/hqa-mnist-0da85963.pth
#
# (v2's file is in the git history: git show 6d606a0:zoo/hqa-mnist-90f6667d.pth; v3's
# table was made from the same weights before the learned prior was added,
# ~/runs/mnist-v3/upper/model.pth, which decodes identically.)
#
# A file that exists is kept, so rerunning the command continues. TEMPERATURES="1 2"
# and TEMPERATURE_RESULTS=/tmp/x choose the values and the output folder.
set -euo pipefail
data=${1:?usage: run.sh DATA_ROOT WEIGHTS}
weights=${2:?usage: run.sh DATA_ROOT WEIGHTS}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
results=${TEMPERATURE_RESULTS:-$here}
mkdir -p "$results"
for t in ${TEMPERATURES:-1 1.5 2 3 4}; do
    file=$results/t$t.json
    [ -e "$file" ] || python "$root/zoo/tools/evaluate_zoo.py" --data-root "$data" \
        --split holdout --weights "$weights" --layers 5 --modes sample --seeds 1 \
        --rfid-n 1000 --spread-n 1000 --temperature "$t" --output "$file"
done
python "$root/zoo/tools/temperature_table.py" "$results" >"$results/table.md"
cat "$results/table.md"
