#!/usr/bin/env bash
# Set-up + build + tests: the one command CI and newcomers run. ctest runs the C++ suite and the
# Python one (pytest python/tests, the case python_tests); the Python package is required here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD=${BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIPKIT_REQUIRE_PYTHON=ON
cmake --build "$BUILD" -j "$(nproc)"
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)"
