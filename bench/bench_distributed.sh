#!/usr/bin/env bash
# Scaling on one machine: 1 process x 2 threads vs 2 processes x 1 thread (lipkit train --nproc 2), one
# epoch each of a CIFAR-shaped data set, alternating, and the communication share of a step.
# Usage: bench/bench_distributed.sh DATA_FOLDER [presets] [rounds]   (run alone: nothing else on the cores)
set -euo pipefail
data=$1; presets=${2:-cpl-s,sll-s}; rounds=${3:-2}
cli=${LIPKIT_CLI:-build/apps/lipkit}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
field() { /usr/bin/python3 -c "import json,sys; m=json.loads(open(sys.argv[1]).readlines()[-1]); print(m.get(sys.argv[2], 0))" "$@"; }
printf "%-7s %5s %14s %14s %8s %12s\n" preset round "1x2 img/s" "2x1 img/s" "ratio" "comm share"
for p in ${presets//,/ }; do
  echo "{\"model\": {\"preset\": \"$p\"}, \"batch_size\": 256, \"epochs\": 1}" > "$work/$p.json"
  for r in $(seq "$rounds"); do
    rm -rf "$work/a" "$work/b"
    "$cli" train --config "$work/$p.json" --data "$data" --out "$work/a" --threads 2 --quiet > /dev/null
    "$cli" train --config "$work/$p.json" --data "$data" --out "$work/b" --nproc 2 --threads 1 --quiet > /dev/null
    one=$(field "$work/a/metrics.jsonl" images_per_second); two=$(field "$work/b/metrics.jsonl" images_per_second)
    comm=$(field "$work/b/metrics.jsonl" communication_seconds); secs=$(field "$work/b/metrics.jsonl" train_seconds)
    /usr/bin/python3 -c "import sys; o,t,c,s=map(float,sys.argv[3:]); print('%-7s %5s %14.1f %14.1f %7.2fx %11.1f%%' % (sys.argv[1], sys.argv[2], o, t, t/o, 100*c/s))" \
      "$p" "$r" "$one" "$two" "$comm" "$secs"
  done
done
