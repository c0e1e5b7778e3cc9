#!/usr/bin/env bash
# Two lipkit train runs sharing the machine's cores vs one alone: img/s from metrics.jsonl.
# usage: bench/bench_sharing.sh LIPKIT DATA_DIR [CONFIG] ; extra environment (e.g. OMP_WAIT_POLICY)
# passes through to the runs.
set -euo pipefail
bin=$1 data=$2 config=${3:-configs/cpl-s.json}
out=$(mktemp -d)
run() { "$bin" train --config "$config" --data "$data" --epochs 1 --subset 1280 --quiet --out "$out/$1" > /dev/null; }
ips() { python3 -c "import json,sys; print(round(json.loads(open(sys.argv[1]).readlines()[-1])['images_per_second'], 1))" "$out/$1/metrics.jsonl"; }
run solo
echo "solo: $(ips solo) img/s"
run a & run b & wait
echo "two at once: $(ips a) and $(ips b) img/s"
rm -rf "$out"
