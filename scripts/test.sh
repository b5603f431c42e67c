#!/usr/bin/env bash
# Builds scratchnet and runs the whole test suite (the README's test command and CI's).
# Unit tests make their own tiny data; the end-to-end test uses MNIST, fetched first.
#   scripts/test.sh              Release build in build/, then ctest
#   scripts/test.sh --sanitize   ASan + UBSan build in build-asan/, then ctest
# Set SCRATCHNET_WERROR=ON to turn warnings into errors (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
flags=(-DCMAKE_BUILD_TYPE=Release)
for arg in "$@"; do
  case "$arg" in
    --sanitize) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSCRATCHNET_SANITIZE=ON) ;;
    *) echo "test.sh: unknown option '$arg' (expected --sanitize)" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
bash scripts/fetch-data.sh mnist   # the end-to-end test trains on a slice of real MNIST
cmake -S . -B "$dir" -G Ninja "${flags[@]}" -DSCRATCHNET_WERROR="${SCRATCHNET_WERROR:-OFF}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j "$(nproc)"
