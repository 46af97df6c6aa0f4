#!/usr/bin/env bash
# The runs behind benchmarks/results/tradeoff/, in the order CPU time allowed
# (two shared cores; Inception ~0.15 s per digit). Every step is resumable: a
# finished row or rFID is kept under $OUT and skipped on a rerun.
#   bash benchmarks/results/tradeoff/run.sh [DATA_ROOT] [OUT] [a|b|report]
# a: layers 5 and 4; b: layers 3, 2 and 1 (a and b can run side by side). The
# rows the targets read come first (mmse, argmin, sample-t3, then the
# other temperatures, then average: 8 walks per decode), then rFID: n=1,000 at
# layers 5 and 4, n=10,000 at layer 5 (mmse, argmin, sample-t3 first), then
# n=1,000 at layers 3-1. report: the committed table and figures.
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-$HOME/runs/tradeoff}
STEP=${3:-a}
export OMP_NUM_THREADS=1
run() { nice -n 5 python benchmarks/tradeoff.py --data-root "$DATA" --output "$OUT" "$@"; }
FIRST=mmse,argmin,sample-t3,sample-t1,sample-t2,sample-t5
case $STEP in
a)
  run --layers 5,4 --decodes $FIRST
  run --layers 5,4 --decodes mmse,argmin,sample-t3 --rfid --rfid-n 1000
  run --layers 5,4 --rfid --rfid-n 1000
  run --layers 5 --decodes mmse,argmin,sample-t3 --rfid
  run --layers 5 --rfid
  ;;
b)
  run --layers 3,2,1 --decodes $FIRST
  run --layers 3,2,1
  run --layers 3,2,1 --rfid
  ;;
report)
  run --report-only --report benchmarks/results/tradeoff
  ;;
esac
