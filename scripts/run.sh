#!/usr/bin/env bash
# The main job, from a fresh machine: install what is needed, build, fetch MNIST, train the
# default model (basic, 5 epochs) and evaluate it on the MNIST test set.
#   scripts/run.sh [extra 'scratchnet train' flags, e.g. --model bn or --epochs 1]
# The run goes to runs/<model>/ (replacing an earlier run there).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target scratchnet_cli
bash scripts/fetch-data.sh mnist

model=basic
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = --model ] && [ $((i + 1)) -lt ${#args[@]} ] && model=${args[$((i + 1))]}
done
out=runs/$(basename "${model%.*}")
build/scratchnet train --dataset mnist --out "$out" --force "$@"
build/scratchnet eval "$out/model.safetensors"
