#!/usr/bin/env bash
# The reset x loss-scaling ablation of issue 9: four MNIST stacks (paper Table 10
# widths), each layer trained for the same small budget (300 steps of batch 128),
# on the first 55,000 training digits (the last 5,000 are held out for the
# evaluation that picks the recipe; the test set is never used).
#
#   bash zoo/results/ablation/train.sh ../shared/data ~/runs/ablation
#
# Four arms at once, one CPU thread each; rerun the same command to resume.
set -euo pipefail
data=${1:?usage: train.sh DATA_ROOT OUT_DIR}
out=${2:?usage: train.sh DATA_ROOT OUT_DIR}
here=$(cd "$(dirname "$0")/../../.." && pwd)
arm() {  # reset scaling
    local dir="$out/$1-$2"
    local resume=()
    [ -f "$dir/checkpoint.pth" ] && resume=(--resume)
    OMP_NUM_THREADS=1 python "$here/examples/train_hqa.py" --config mnist \
        --data-root "$data" --output "$dir" --reset "$1" --loss-scaling "$2" \
        --steps 300 --batch-size 128 --holdout 5000 --eval-images 5000 \
        --seed 0 --compile --checkpoint-every 100 --log-every 50 --no-progress \
        "${resume[@]}" > "$dir.log" 2>&1
}
mkdir -p "$out"
arm paper original &
arm paper position &
arm data original &
arm data position &
wait
