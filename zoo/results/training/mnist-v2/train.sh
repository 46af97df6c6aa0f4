#!/usr/bin/env bash
# The paper-budget retrain of the MNIST stack (issue 9): paper Table 10 widths and
# schedule (18,000 steps of batch 512 for every layer), with the recipe the
# ablation in zoo/results/ablation/ chose, trained on the first 55,000 training
# digits (the last 5,000 are held out; the test set is never used for a choice).
#
#   bash zoo/results/training/mnist-v2/train.sh ../shared/data ~/runs/mnist-v2
#
# Options after OUT_DIR are passed on to examples/train_hqa.py (mnist-v3/train.sh
# adds --layers 1 --reset-min-distance 0.25, then --start-layer 2 --init).
#
# Both CPU cores, torch.compile and channels-last. Rerun the same command to
# continue after an interruption (it resumes from OUT/checkpoint.pth).
set -euo pipefail
data=${1:?usage: train.sh DATA_ROOT OUT_DIR [TRAIN_HQA_OPTION...]}
out=${2:?usage: train.sh DATA_ROOT OUT_DIR [TRAIN_HQA_OPTION...]}
shift 2
here=$(cd "$(dirname "$0")/../../../.." && pwd)
python -c "import compressai_hqa" 2>/dev/null || {
    echo "$(basename "$0"): compressai_hqa is not importable: install the project first" \
        "(pip install -e . in its virtualenv, then activate it)" >&2
    exit 2
}
resume=()
[ -f "$out/checkpoint.pth" ] && resume=(--resume)
exec python "$here/examples/train_hqa.py" --config mnist --data-root "$data" \
    --output "$out" --reset data --loss-scaling position --holdout 5000 \
    --eval-images 5000 --seed 0 --compile --channels-last --checkpoint-every 250 \
    --log-every 100 --no-progress "$@" "${resume[@]}"
