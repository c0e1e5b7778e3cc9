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
# the Python package lands on a prefix's dist-packages: import it from there in a fresh interpreter
py=$(ls -d "$work"/prefix/lib/python3*/dist-packages 2>/dev/null | head -1 || true)
if [ -n "$py" ] && [ -d "$py/lipkit" ]; then
  PYTHONPATH="$py" /usr/bin/python3 -c "import lipkit, torch; m = lipkit.models.preset('cpl-fmnist', in_channels=1, image_size=28); print('python package from the prefix:', lipkit.__file__, tuple(m.eval()(torch.rand(1, 1, 28, 28)).shape))"
fi
