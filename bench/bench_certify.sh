#!/usr/bin/env bash
# lipkit certify throughput, start-up included, on random 3x32x32 images in the CIFAR-10 binary layout,
# alternating two builds in one run (e.g. before and after a change), nothing else running.
# usage: bench/bench_certify.sh BEFORE_LIPKIT AFTER_LIPKIT DATA_DIR POINTS CHECKPOINT...
set -euo pipefail
before=$1 after=$2 data=$3 points=$4
shift 4
for ckpt in "$@"; do
  for bin in "$before" "$after"; do
    start=$(date +%s.%N)
    "$bin" certify --checkpoint "$ckpt" --data "$data" --subset "$points" > /dev/null
    end=$(date +%s.%N)
    awk -v b="$bin" -v c="$ckpt" -v s="$start" -v e="$end" -v n="$points" \
      'BEGIN { printf "%-40s %-28s %7.1f s %7.1f img/s\n", b, c, e - s, n / (e - s) }'
  done
done
