#!/usr/bin/env bash
# Evaluates the four ablation stacks of train.sh on the 5,000 held-out training
# digits (never the test set) and writes README-ready tables:
#
#   bash zoo/results/ablation/evaluate.sh ../shared/data ~/runs/ablation
#
# Per arm: every layer with argmin, sampled and top-sampled decoding (one seed),
# codes used, code entropy, posterior entropy and decode spread; then rFID at every
# layer with stochastic decoding (lower layers sampled, seed 0) on the first 500
# held-out digits. A file that exists is kept, so rerunning the command continues
# an interrupted evaluation.
set -euo pipefail
data=${1:?usage: evaluate.sh DATA_ROOT RUNS_DIR}
runs=${2:?usage: evaluate.sh DATA_ROOT RUNS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
arms=(paper-original paper-position data-original data-position)
for arm in "${arms[@]}"; do
    [ -e "$here/$arm.json" ] || python "$root/zoo/tools/evaluate_zoo.py" \
        --data-root "$data" --split holdout --weights "$runs/$arm/model.pth" \
        --modes argmin,sample,sample-top --seeds 1 --rfid-n 0 --output "$here/$arm.json"
done
for arm in "${arms[@]}"; do
    [ -e "$here/$arm-rfid.json" ] || python "$root/zoo/tools/evaluate_zoo.py" \
        --data-root "$data" --split holdout --weights "$runs/$arm/model.pth" \
        --modes sample --seeds 1 --rfid-n 500 --spread-n 0 \
        --output "$here/$arm-rfid.json"
done
python "$root/zoo/tools/ablation_table.py" "$here" > "$here/table.md"
