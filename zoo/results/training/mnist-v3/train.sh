#!/usr/bin/env bash
# MNIST stack v3: v2's recipe (zoo/results/training/mnist-v2/train.sh) with the
# data-driven reset's candidate bug fixed (it drew its candidate batch points with
# a stride equal to the latent width, so at layers 1-2 it only ever saw the left
# edge of the digits). Layer 1 is v2's (it already uses 242 codes); layers 2-5 are
# retrained from scratch at the paper's full budget (18,000 steps of batch 512
# each), on the first 55,000 training digits (the last 5,000 are held out; the
# test set is never used for a choice).
#
#   bash zoo/results/training/mnist-v3/train.sh ../shared/data ~/runs/mnist-v3
#
# Rerun the same command to continue after an interruption (it resumes from
# OUT/checkpoint.pth; copy the committed run/ folder to OUT first when OUT is gone).
set -euo pipefail
data=${1:?usage: train.sh DATA_ROOT OUT_DIR}
out=${2:?usage: train.sh DATA_ROOT OUT_DIR}
here=$(cd "$(dirname "$0")/../../../.." && pwd)
exec bash "$here/zoo/results/training/mnist-v2/train.sh" "$data" "$out" \
    --start-layer 2 --init "$here/zoo/hqa-mnist-90f6667d.pth"
