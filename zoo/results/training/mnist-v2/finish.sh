#!/usr/bin/env bash
# Ships a finished MNIST stack (v2 by default): stores the learned code prior in the
# weights, copies them to zoo/ under their SHA-256, and measures every number of
# the model card on the MNIST test set (the test set is used here only, after
# every choice was made on the held-out training digits).
#
#   bash zoo/results/training/mnist-v2/finish.sh ../shared/data ~/runs/mnist-v2
#   FINISH_TEMPERATURE=T bash zoo/results/training/mnist-v2/finish.sh \
#       ../shared/data ~/runs/mnist-v3 v3
#
# NAME (third argument, default v2) names the results folders; FINISH_TEMPERATURE
# (default 3, v2's) is the card's decode temperature of step 5b, chosen beforehand
# on the held-out training digits (zoo/results/temperature/run.sh).
#
# A step whose output exists is skipped, so rerunning the same command continues
# after an interruption. Estimated at about 3 hours on two CPU cores with
# pytorch-fid's Inception at 0.25 s per image, most of it the three rFIDs on all
# 10,000 test digits (the Inception features of the originals are cached after
# the first); the folded Inception of load_inception halves the rFID part
# (benchmarks/bench_inception.py). Afterwards: pin the printed file in
# compressai_hqa/families.py (the family's ShippedWeights) and write the card (zoo/README.md).
#
# Results go to zoo/results/NAME/ and zoo/figures/NAME/ (the first stack's stay where
# they are). FINISH_NUM_IMAGES=N evaluates on the first N test digits only: a
# smoke check of this script (with FINISH_OUT=/tmp/x for its outputs).
# FINISH_RFID10K_MODES="sample" limits step 5 to those decodings (default: all three).
set -euo pipefail
data=${1:?usage: finish.sh DATA_ROOT RUN_DIR [NAME]}
run=${2:?usage: finish.sh DATA_ROOT RUN_DIR [NAME]}
name=${3:-v2}
# as card_targets.py names the file: "%g" (3.0 -> 3)
temperature=$(python -c 'import sys; print(f"{float(sys.argv[1]):g}")' "${FINISH_TEMPERATURE:-3}")
cd "$(dirname "$0")/../../../.."
out=${FINISH_OUT:-zoo}
results=$out/results/$name
figures=$out/figures/$name
python -c "import compressai_hqa" 2>/dev/null || {
    echo "$(basename "$0"): compressai_hqa is not importable: install the project first" \
        "(pip install -e . in its virtualenv, then activate it)" >&2
    exit 2
}
mkdir -p "$results" "$figures"
few=()
[ -n "${FINISH_NUM_IMAGES:-}" ] && few=(--num-images "$FINISH_NUM_IMAGES")

step() { # step OUTPUT COMMAND...: run COMMAND unless OUTPUT exists
    local out=$1
    shift
    if [ -e "$out" ]; then
        echo "finish.sh: have $out" >&2
    else
        echo "finish.sh: + $*" >&2
        local start=$SECONDS
        "$@"
        echo "finish.sh: $out took $((SECONDS - start)) s" >&2
    fi
}

# (the committed run/ holds hqa-mnist-prior.pth, not model.pth: step 1 is done there)
[ -f "$run/model.pth" ] || [ -f "$run/hqa-mnist-prior.pth" ] || {
    echo "finish.sh: $run/model.pth missing (is the run finished?)" >&2; exit 2; }

# 1. The learned code prior (argmin codes of the 60,000 training digits) and the
#    codec's rates on the test digits with the uniform and the learned prior.
#    A smoke run's prior (FINISH_NUM_IMAGES: estimated on that many digits) goes to
#    FINISH_OUT, never into the run folder, where a later full run would ship it;
#    and a prior is kept only beside the rates measured with it, on as many digits.
if [ -n "${FINISH_NUM_IMAGES:-}" ]; then
    prior=$out/hqa-mnist-prior-first$FINISH_NUM_IMAGES.pth
else
    prior=$run/hqa-mnist-prior.pth
fi
if [ -e "$prior" ] && ! python -c '
import json, sys
try:
    ok = json.load(open(sys.argv[1]))["num_images"] == int(sys.argv[2])
except (OSError, KeyError, ValueError):
    ok = False
sys.exit(0 if ok else 1)' "$results/codec-mnist-test.json" "${FINISH_NUM_IMAGES:-10000}"; then
    echo "finish.sh: $prior has no $results/codec-mnist-test.json of" \
        "${FINISH_NUM_IMAGES:-10000} digits beside it: estimating it again" >&2
    rm -f "$prior"
fi
step "$prior" python examples/estimate_prior.py --data-root "$data" \
    --weights "$run/model.pth" --output "$prior" \
    --json "$results/codec-mnist-test.json" "${few[@]}"

# 2. The shipped file, named after its SHA-256 (a smoke run's stays in FINISH_OUT).
sha=$(sha256sum "$prior" | cut -d' ' -f1)
weights=$out/hqa-mnist-${sha:0:8}.pth
[ -e "$weights" ] || cp "$prior" "$weights"
echo "finish.sh: weights $weights, SHA-256 $sha" >&2

# 3. The cheap measurements first: what tests/test_zoo.py checks the shipped
#    weights against, codebook usage on the test digits, and the figures (from the
#    100 test digits shipped in the package).
step "$results/mnist-test-first1000.json" python zoo/tools/evaluate_zoo.py \
    --data-root "$data" --weights "$weights" --num-images 1000 --seeds 1 \
    --rfid-n 0 --output "$results/mnist-test-first1000.json"
step "$results/code-usage-test.json" python zoo/tools/code_usage.py \
    --data-root "$data" --weights "$weights" --output "$results/code-usage-test.json"
for kind in layers interpolate diversity codes; do
    step "$figures/$kind.png" python -m compressai_hqa.figures "$kind" \
        --checkpoint "$weights" -o "$figures/$kind.png"
done

# 4. The card's table: every layer, argmin and 3 sampled seeds, rFID on 1,000.
step "$results/mnist-test.json" python zoo/tools/evaluate_zoo.py --data-root "$data" \
    --weights "$weights" --seeds 3 --rfid-n 1000 --output "$results/mnist-test.json" \
    "${few[@]}"
step "$figures/rate-perception.png" python -m compressai_hqa.figures rate-perception \
    -f "$results/mnist-test.json" -o "$figures/rate-perception.png"

# 5. The 8-bit targets: rFID on all 10,000 test digits, for each decoding.
for mode in ${FINISH_RFID10K_MODES:-sample sample-top argmin}; do
    file=$results/mnist-test-layer5-$mode-rfid10k.json
    step "$file" python zoo/tools/evaluate_zoo.py --data-root "$data" \
        --weights "$weights" --layers 5 --modes "$mode" --seeds 1 --rfid-n 10000 \
        --output "$file" "${few[@]}"
done

# 5b. The same at the card's decode temperature (v2: 3, the lowest rFID on the
#     held-out training digits, zoo/results/temperature/): sampled MSE and class
#     error over 3 seeds, decode spread, and rFID on all 10,000 test digits.
file=$results/mnist-test-layer5-sample-t$temperature-rfid10k.json
step "$file" python zoo/tools/evaluate_zoo.py --data-root "$data" --weights "$weights" \
    --layers 5 --modes sample --seeds 3 --rfid-n 10000 --spread-n 1000 \
    --temperature "$temperature" --output "$file" "${few[@]}"

# 6. The card's targets, met or missed, beside the first stack's values (read from
#    the files above; rewritten on every run, it takes a second).
python zoo/tools/card_targets.py "$results" --baseline zoo/results \
    --temperature "$temperature" >"$results/targets.md"
cat "$results/targets.md" >&2
echo "finish.sh: done; pin $weights ($sha) in compressai_hqa/zoo/pretrained.py" >&2
