#!/usr/bin/env bash
# Layer 1's codes (issue 9): the v2 stack's layer 1 is argmin of 242 codes on the
# test digits, but only 8 of them are distinct (the others are near-copies that the
# data rule's fallback, the paper's move, made: `zoo/tools/code_usage.py`). Its
# encoder outputs lie within a squared distance of 4 of a code almost everywhere,
# so the data rule, which only seeds a code at a batch point at least
# reset_min_distance (4) from every code, rarely can. This trains layer 1 alone from
# scratch with the data rule (the fixed candidates) at reset_min_distance 4 (v2's
# value), 1 and 0.25, everything else as v2 (--reset data --loss-scaling
# position), each for the same budget: 1,500 steps of batch 256 (4 % of the
# paper's). Trained on the first 55,000 training digits; evaluated on the last
# 5,000 (held out; the test set is never used for this choice).
#
#   bash zoo/results/ablation-layer1/run.sh ../shared/data ~/runs/ablation-layer1
#
# Arms run one after the other on both cores; rerunning the same command resumes
# an interrupted arm and skips every file that exists. Writes <arm>.json (codes
# used and distinct, code and posterior entropy, MSE and class error of layer 1's
# reconstructions) beside this script, then table.md. ABLATION_ARMS="4 1"
# ABLATION_STEPS=20 ABLATION_RESULTS=/tmp/x is a quick check of the script.
set -euo pipefail
data=${1:?usage: run.sh DATA_ROOT OUT_DIR}
out=${2:?usage: run.sh DATA_ROOT OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
results=${ABLATION_RESULTS:-$here}
arms=(${ABLATION_ARMS:-4 1 0.25})
steps=${ABLATION_STEPS:-1500}
mkdir -p "$out" "$results"
source "$here/../arms.sh"
for d in "${arms[@]}"; do
    echo "run.sh: reset_min_distance=$d" >&2
    start=$SECONDS
    train_arm "$out/$d" --config mnist --reset data --loss-scaling position \
        --reset-min-distance "$d" --data-root "$data" --layers 1 --steps "$steps" \
        --batch-size 256 --holdout 5000 --eval-images 5000 --seed 0 --compile \
        --channels-last --checkpoint-every 250 --log-every 100 --no-progress
    echo "run.sh: reset_min_distance=$d done in $((SECONDS - start)) s" >&2
done
for d in "${arms[@]}"; do
    [ -e "$results/$d.json" ] || python "$root/zoo/tools/evaluate_zoo.py" \
        --data-root "$data" --split holdout --weights "$out/$d/model.pth" \
        --layers 1 --modes argmin --seeds 1 --rfid-n 0 --spread-n 0 \
        --output "$results/$d.json"
done
python "$root/zoo/tools/ablation_table.py" "$results" --arms "${arms[*]}" \
    --columns "reset_min_distance" >"$results/table.md"
cat "$results/table.md"
