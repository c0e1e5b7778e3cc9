#!/usr/bin/env bash
# The main job on a fresh Debian machine: set-up, build, train a 1-Lipschitz SLL classifier on
# Fashion-MNIST, certify it, check the certificates with PGD, and describe the model.
# About 10 minutes on 2 cores. Outputs in runs/sll-fmnist/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD=${BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" --target lipkit_cli -j "$(nproc)"
LIPKIT="$BUILD/apps/lipkit"
OUT=${OUT:-runs/sll-fmnist}
RESUME=""
[ -f "$OUT/model.pt" ] && RESUME="--resume"   # an interrupted demo continues where it stopped

"$LIPKIT" train --config configs/sll-fmnist.json --out "$OUT" $RESUME
"$LIPKIT" certify --checkpoint "$OUT/model.pt" --norm l2 --radii 36/255,72/255,108/255,1 \
                  --json "$OUT/cert.json" --plot "$OUT/cert.png"
"$LIPKIT" attack --checkpoint "$OUT/model.pt" --norm l2 --eps 36/255 --steps 50 --subset 1000
"$LIPKIT" info --checkpoint "$OUT/model.pt"
echo "report: $OUT/cert.json, plot: $OUT/cert.png, metrics: $OUT/metrics.jsonl"
