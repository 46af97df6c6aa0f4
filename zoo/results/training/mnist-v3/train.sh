#!/usr/bin/env bash
# MNIST stack v3 (issue 9): v2's recipe (zoo/results/training/mnist-v2/train.sh,
# paper Table 10, 18,000 steps of batch 512 per layer, --reset data
# --loss-scaling position, the last 5,000 training digits held out, seed 0) with
# the data reset's candidate bug fixed, in two stages:
#   1. layer 1 with --reset-min-distance 0.25 (zoo/results/ablation-layer1/: 137
#      distinct codes on the held-out digits against 5 at v2's 4), into OUT/layer1;
#   2. layers 2-5 on it, from scratch, at v2's minimum distance (4), into OUT/upper.
# The test set is never used for a choice.
#
#   bash zoo/results/training/mnist-v3/train.sh ../shared/data ~/runs/mnist-v3
#
# Rerun the same command to continue after an interruption: each stage resumes
# from its checkpoint.pth, and the second starts when the first has finished
# (copy the committed run/ folder to OUT first when OUT is gone).
set -euo pipefail
data=${1:?usage: train.sh DATA_ROOT OUT_DIR}
out=${2:?usage: train.sh DATA_ROOT OUT_DIR}
v2=$(cd "$(dirname "$0")/../mnist-v2" && pwd)/train.sh
finished() { # finished DIR: its layer_metrics.csv has a row (the layer is done)
    [ -f "$1/layer_metrics.csv" ] && [ "$(wc -l <"$1/layer_metrics.csv")" -ge 2 ]
}
finished "$out/layer1" ||
    bash "$v2" "$data" "$out/layer1" --layers 1 --reset-min-distance 0.25
exec bash "$v2" "$data" "$out/upper" --start-layer 2 --init "$out/layer1/model.pth"
