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
skip=()
for arg in "$@"; do
  case "$arg" in
    # The end-to-end runs that train on real MNIST are ~10x slower under the sanitizers; the
    # trainer, loader, resume, image, report and export unit tests and cli_errors (which trains
    # on tiny sets) cover the same code there, and test_server the server behind the page.
    # -O1 with line tables only halves the sanitizer build (stack traces keep file:line); the
    # benchmarks are not tests and are left out there.
    --sanitize) dir=build-asan
                flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1"
                       -DSCRATCHNET_SANITIZE=ON -DSCRATCHNET_BUILD_BENCH=OFF)
                skip=(-E 'e2e_train_mnist|e2e_predict_mnist|e2e_finetune_folder|e2e_serve_page|e2e_report_render') ;;
    *) echo "test.sh: unknown option '$arg' (expected --sanitize)" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
bash scripts/fetch-data.sh mnist   # the end-to-end test trains on a slice of real MNIST
cmake -S . -B "$dir" -G Ninja "${flags[@]}" -DSCRATCHNET_WERROR="${SCRATCHNET_WERROR:-OFF}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" "${skip[@]}"
