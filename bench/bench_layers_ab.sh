#!/usr/bin/env bash
# The layer-overhead table of two builds (e.g. before and after a change) in one run: their
# bench_layers binaries alternate, twice each, on the same cases; each prints its layer/plain ratios.
# Nothing else may run meanwhile.
# usage: bench/bench_layers_ab.sh BEFORE_BUILD_DIR AFTER_BUILD_DIR [benchmark filter regex]
set -euo pipefail
before=$1 after=$2 filter=${3:-.}
for round in 1 2; do
  for dir in "$before" "$after"; do
    echo "=== round $round: $dir"
    "$dir/bench/bench_layers" --benchmark_filter="$filter" 2>/dev/null | sed -n '/layer (train fwd+bwd)/,$p'
  done
done
