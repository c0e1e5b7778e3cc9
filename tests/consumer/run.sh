#!/usr/bin/env bash
# Installs the built lipkit into a temporary prefix, then configures, builds and runs the consumer
# project against it: find_package(lipkit) + lipkit::lipkit work from an installed tree.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/lib/cmake/lipkit/lipkitConfig.cmake" || { echo "no lipkitConfig.cmake installed"; exit 1; }
test -f "$work/prefix/include/lipkit/lipkit.h" || { echo "no headers installed"; exit 1; }
cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log" \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/build/consumer"
