#!/usr/bin/env bash
# Every run of one CompressAI baseline behind benchmarks/results/compressai/ and the
# frontier (benchmarks/frontier.py), as they ran; each step resumes where it stopped
# and skips finished runs.
#   bash benchmarks/results/compressai/run.sh MODEL [DATA_ROOT] [OUT]
# MODEL: bmshj2018-factorized | bmshj2018-hyperprior | mbt2018-mean
#  1. widths: N, M chosen on the held-out digits at lambda 2.5e-5 (~16 bits/digit)
#  2. sweep: the six lambdas 5e-6 ... 1.5625e-2 at those widths
#  3. lambda 1.2e-5 at those widths (between the sweep's two lowest rates)
#  4. wider nets at lambdas 1.25e-4 ... 1.5625e-2 (the frontier scores each lambda
#     at the width of lowest held-out loss)
#  5. collect: logs and final metrics into benchmarks/results/compressai/
set -euo pipefail
MODEL=${1:?model name}
DATA=${2:-../shared/data}
OUT=${3:-$HOME/runs/compressai}
export OMP_NUM_THREADS=1
B() { python benchmarks/compressai_baselines.py "$@" --data-root "$DATA" --output "$OUT" -q; }
B widths --model "$MODEL"
B sweep --model "$MODEL"
case $MODEL in
bmshj2018-factorized) N=16 M=24 WIDE=(32 48) ;;
bmshj2018-hyperprior) N=8 M=12 WIDE=(16 24) ;;
mbt2018-mean) N=16 M=24 WIDE=(32 48) ;;
*) echo "unknown model $MODEL" >&2; exit 1 ;;
esac
B train --model "$MODEL" --lmbda 1.2e-05 --N $N --M $M
for l in 0.003125 0.015625 0.000125 0.000625; do
  B train --model "$MODEL" --lmbda $l --N "${WIDE[0]}" --M "${WIDE[1]}"
done
if [ "$MODEL" = bmshj2018-hyperprior ]; then
  B train --model "$MODEL" --lmbda 0.003125 --N 32 --M 48
fi
python benchmarks/compressai_baselines.py collect --output "$OUT"
