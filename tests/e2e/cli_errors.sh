#!/usr/bin/env bash
# Every bad input a user can give the program ends in a one-line error naming the problem and
# a non-zero exit: no crash, no stack trace.
#   tests/e2e/cli_errors.sh path/to/scratchnet
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

# expect_error NAME EXPECTED-SUBSTRING -- COMMAND...
expect_error() {
  local name=$1 want=$2
  shift 3
  local out code
  out=$("$@" 2>&1 >/dev/null)
  code=$?
  local lines
  lines=$(printf '%s' "$out" | grep -c '')
  if [ $code -eq 0 ] || [ $code -ge 128 ]; then
    echo "FAIL $name: exit code $code (expected an error exit)"; failures=$((failures + 1))
  elif [[ "$out" != *"$want"* ]]; then
    echo "FAIL $name: message '$out' lacks '$want'"; failures=$((failures + 1))
  elif [ "$lines" -ne 1 ] && [[ "$out" != *"Run with --help"* ]]; then
    echo "FAIL $name: expected one line, got $lines: $out"; failures=$((failures + 1))
  else
    echo "ok   $name: $out" | head -1; passed=$((passed + 1))
  fi
}

# u32 N -> 4 big-endian bytes
u32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
# idx_images FILE N [SIDE]: N SIDExSIDE images of zeros (SIDE 28 by default)
idx_images() {
  local side=${3:-28}
  { printf '\x00\x00\x08\x03'; u32 "$2"; u32 "$side"; u32 "$side"; head -c $(($2 * side * side)) /dev/zero; } >"$1"
}
# idx_labels FILE LABEL...
idx_labels() { local f=$1; shift; { printf '\x00\x00\x08\x01'; u32 $#; for l in "$@"; do printf "\\x$(printf %02x "$l")"; done; } >"$f"; }
# good_set DIR: a valid 4-image set
good_set() {
  mkdir -p "$1"
  idx_images "$1/train-images-idx3-ubyte" 4; idx_labels "$1/train-labels-idx1-ubyte" 0 1 2 3
  idx_images "$1/t10k-images-idx3-ubyte" 2; idx_labels "$1/t10k-labels-idx1-ubyte" 4 5
}

good_set "$tmp/good"
expect_error "missing data directory" "dataset 'mnist' not found in $tmp/none/mnist" -- \
  "$bin" train --dataset mnist --data-dir "$tmp/none" --out "$tmp/r"

good_set "$tmp/trunc"; head -c 1000 "$tmp/good/train-images-idx3-ubyte" >"$tmp/trunc/train-images-idx3-ubyte"
expect_error "truncated IDX" "train-images-idx3-ubyte: truncated: the header promises 3136 data bytes, the file has 984" -- \
  "$bin" train --dataset "$tmp/trunc" --out "$tmp/r"

good_set "$tmp/magic"; printf '\x89PNG\x00\x00\x00\x00' >"$tmp/magic/t10k-images-idx3-ubyte"
expect_error "wrong magic number" "t10k-images-idx3-ubyte: not an IDX file: magic number 89504e47" -- \
  "$bin" train --dataset "$tmp/magic" --out "$tmp/r"

good_set "$tmp/counts"; idx_labels "$tmp/counts/train-labels-idx1-ubyte" 0 1 2
expect_error "image and label counts differ" "has 4 images but $tmp/counts/train-labels-idx1-ubyte has 3 labels" -- \
  "$bin" train --dataset "$tmp/counts" --out "$tmp/r"

mkdir -p "$tmp/data/mnist"; cp "$tmp/good"/* "$tmp/data/mnist/"; idx_labels "$tmp/data/mnist/t10k-labels-idx1-ubyte" 4 12
expect_error "label out of range" "t10k-labels-idx1-ubyte: label 12 at index 1 is out of range for 10 classes" -- \
  "$bin" train --dataset mnist --data-dir "$tmp/data" --out "$tmp/r"

expect_error "unknown preset" "model 'resnet' is neither a preset (basic, bn)" -- \
  "$bin" train --model resnet --dataset "$tmp/good" --out "$tmp/r"

echo '{"layers": [{"type": "Conv3d", "out_channels": 4}]}' >"$tmp/unknown.json"
expect_error "spec with an unknown layer" "unknown.json: layer 0: unknown layer type 'Conv3d'" -- \
  "$bin" train --model "$tmp/unknown.json" --dataset "$tmp/good" --out "$tmp/r"

cat >"$tmp/shapes.json" <<'JSON'
{"input": [1, 28, 28], "layers": [
  {"type": "Conv2d", "out_channels": 64, "kernel": 3, "padding": 1}, {"type": "MaxPool2d", "kernel": 2},
  {"type": "Flatten"}, {"type": "Linear", "in_features": 3136, "out_features": 10}]}
JSON
expect_error "spec with impossible shapes" "shapes.json: layer 3 Linear: expects 3136 input features, got 12544" -- \
  "$bin" info "$tmp/shapes.json"

expect_error "zero epochs" "--epochs" -- "$bin" train --epochs 0 --dataset "$tmp/good" --out "$tmp/r"
expect_error "negative learning rate" "--lr" -- "$bin" train --lr -0.1 --dataset "$tmp/good" --out "$tmp/r"
expect_error "zero batch size" "--batch-size" -- "$bin" train --batch-size 0 --dataset "$tmp/good" --out "$tmp/r"
expect_error "zero threads" "--threads" -- "$bin" train --threads 0 --dataset "$tmp/good" --out "$tmp/r"
expect_error "unknown flag" "--lerning-rate" -- "$bin" train --lerning-rate 1 --dataset "$tmp/good"

# A real model file to damage: one epoch on the tiny set.
"$bin" train --model basic --dataset "$tmp/good" --epochs 1 --out "$tmp/run" --quiet >/dev/null ||
  { echo "FAIL could not train the tiny model"; exit 1; }
model=$tmp/run/model.safetensors
head -c 5000 "$model" >"$tmp/truncated.safetensors"
expect_error "truncated model file" "truncated.safetensors" -- "$bin" eval "$tmp/truncated.safetensors" --dataset "$tmp/good"
# A model file whose tensors belong to another architecture: its spec says Linear(1600, 127)
# (the header is text, so one digit can be changed in place), its tensors are 128 wide.
LC_ALL=C sed 's/_features\\":128/_features\\":127/g' "$model" >"$tmp/other.safetensors"
expect_error "model of another architecture" "tensor '7.weight' has shape (128, 1600) but the architecture needs (127, 1600)" -- \
  "$bin" eval "$tmp/other.safetensors" --dataset "$tmp/good"
good_set "$tmp/small"; idx_images "$tmp/small/t10k-images-idx3-ubyte" 2 14
idx_images "$tmp/small/train-images-idx3-ubyte" 4 14
expect_error "model built for other images" "images of shape (1, 14, 14) do not fit a model built for (1, 28, 28)" -- \
  "$bin" eval "$model" --dataset "$tmp/small"
expect_error "model file that does not exist" "model 'nope.safetensors' is neither a preset" -- \
  "$bin" eval nope.safetensors --dataset "$tmp/good"
expect_error "existing run is not overwritten" "already holds a run" -- \
  "$bin" train --model basic --dataset "$tmp/good" --epochs 1 --out "$tmp/run"
expect_error "resume with changed recipe" "--lr cannot be given with --resume" -- \
  "$bin" train --resume "$tmp/run" --lr 0.1

echo "$passed passed, $failures failed"
[ $failures -eq 0 ]
