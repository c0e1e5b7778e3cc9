#!/usr/bin/env bash
# Installs every Debian package lipkit needs, idempotently (no-op when all are present).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev            # LibTorch 1.13.1 (C++ API, headers, CMake config)
  libgloo-dev             # headers of the Gloo collectives c10d runs on (distributed training)
  libopenblas0-openmp     # fast BLAS/LAPACK behind libblas.so.3 (the reference BLAS is ~16x slower)
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev
  libcairo2-dev fonts-dejavu-core   # certify --plot: PNG and SVG with text
  dataset-fashion-mnist   # /usr/share/datasets/fashion-mnist, the demo data set
  python3-dev pybind11-dev python3-torch python3-numpy python3-pytest   # the Python package (same LibTorch)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's libtorch calls whatever libblas.so.3 / liblapack.so.3 point to: make sure it is OpenBLAS.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  target=/usr/lib/$arch/openblas-openmp/$lib
  if [ -e "$target" ] && [ "$(readlink -f /usr/lib/$arch/$lib)" != "$(readlink -f "$target")" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO update-alternatives --set "$lib-$arch" "$target" >/dev/null
  fi
done
# Auto MPG for the monotonic demo (configs/monotonic-autompg.json): npm vega-datasets' cars.json, where
# `table.path: "autompg"` looks. Optional (no test needs it): skipped without npm or the npm registry.
VEGA=/usr/local/share/lipkit/node_modules/vega-datasets/data/cars.json
if [ ! -e "$VEGA" ] && command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO npm install --silent --no-audit --no-fund --prefix /usr/local/share/lipkit vega-datasets@2 >/dev/null 2>&1 ||
    echo "setup: could not install npm vega-datasets (the Auto MPG demo needs it; nothing else does)"
fi
echo "setup: all packages present"
