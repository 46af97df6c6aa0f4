#!/usr/bin/env bash
# The entropy-weight ablation of issue 9: layer 5 (8 bits) retrained from scratch
# on the v2 stack's layers 1-4 with beta_e (the weight of the KL-to-uniform term)
# at 1e-3 (v2's recipe), 1e-2, 3e-2 and 1e-1, everything else as v2
# (--recipe hqa-mnist-v2), each for the same budget: 3,000 steps of batch 512 (a
# sixth of the paper's). Trained on the first 55,000 training digits; evaluated
# on the last 5,000 (held out; the test set is never used for this choice).
#
#   bash zoo/results/ablation-entropy/run.sh ../shared/data ~/runs/mnist-v2/model.pth ~/runs/ablation-entropy
#
# INIT is the finished v2 stack before finish.sh (its layers 1-4 are used; the
# shipped zoo/hqa-mnist-90f6667d.pth holds the same layers). Arms run one after
# the other on both cores; rerunning the same command resumes an interrupted arm
# and skips every file that exists. Writes <arm>.json (codes, posterior entropy,
# MSE, class error, decode spread) and <arm>-rfid.json (rFID on the first 1,000
# held-out digits, lower layers sampled, and top code sampled too) beside this
# script, then table.md. ABLATION_ARMS="0.001 0.1" ABLATION_STEPS=20
# ABLATION_RESULTS=/tmp/x is a quick check of the script.
set -euo pipefail
data=${1:?usage: run.sh DATA_ROOT INIT OUT_DIR}
init=${2:?usage: run.sh DATA_ROOT INIT OUT_DIR}
out=${3:?usage: run.sh DATA_ROOT INIT OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
results=${ABLATION_RESULTS:-$here}
arms=(${ABLATION_ARMS:-0.001 0.01 0.03 0.1})
steps=${ABLATION_STEPS:-3000}
mkdir -p "$out"
source "$here/../arms.sh"
for beta in "${arms[@]}"; do
    echo "run.sh: beta_e=$beta" >&2
    train_arm "$out/$beta" --config mnist --recipe hqa-mnist-v2 \
        --beta-entropy "$beta" --data-root "$data" --start-layer 5 --init "$init" \
        --steps "$steps" --batch-size 512 --holdout 5000 --eval-images 5000 \
        --seed 0 --compile --channels-last --checkpoint-every 250 --log-every 100 \
        --no-progress
done
for beta in "${arms[@]}"; do
    [ -e "$results/$beta.json" ] || python "$root/zoo/tools/evaluate_zoo.py" \
        --data-root "$data" --split holdout --weights "$out/$beta/model.pth" \
        --layers 5 --modes argmin,sample,sample-top --seeds 1 --rfid-n 0 \
        --output "$results/$beta.json"
    [ -e "$results/$beta-rfid.json" ] || python "$root/zoo/tools/evaluate_zoo.py" \
        --data-root "$data" --split holdout --weights "$out/$beta/model.pth" \
        --layers 5 --modes sample,sample-top --seeds 1 --rfid-n 1000 --spread-n 0 \
        --output "$results/$beta-rfid.json"
done
python "$root/zoo/tools/ablation_table.py" "$results" --arms "${arms[*]}" \
    --columns "beta_e" >"$results/table.md"
cat "$results/table.md"
