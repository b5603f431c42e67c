#!/usr/bin/env bash
# ONNX export end to end: train small models quickly on a slice of MNIST (the `basic` preset, a
# spec with every other layer kind and normalised inputs, and one ending in Softmax), export
# each with `scratchnet export`, and run tools/onnx_check.py on the first 2,000 test images:
# python3-onnx's checker must accept the file and OpenCV's DNN module must predict the class
# scratchnet predicts for every image, with logits within 1e-3 of a NumPy forward pass.
#   tests/e2e/onnx_export.sh path/to/scratchnet DATA_DIR path/to/onnx_check.py
set -euo pipefail
bin=$1 data=$2 check=$3
python=/usr/bin/python3
if [ ! -f "$data/mnist/t10k-images-idx3-ubyte" ]; then
  echo "MNIST is not in $data/mnist: run scripts/fetch-data.sh first" >&2
  exit 1
fi
"$python" -c 'import cv2, numpy, onnx' ||
  { echo "python3-onnx, python3-opencv and python3-numpy are needed: run scripts/install-deps.sh" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/every_kind.json" <<'JSON'
{"input": [1, 28, 28], "layers": [
  {"type": "Conv2d", "out_channels": 8, "kernel": 3, "padding": 1},
  {"type": "BatchNorm2d"}, {"type": "LeakyReLU", "negative_slope": 0.1},
  {"type": "AvgPool2d", "kernel": 3, "stride": 2, "padding": 1},
  {"type": "Conv2d", "out_channels": 16, "kernel": 3, "stride": 2, "padding": 1, "bias": false},
  {"type": "BatchNorm2d", "eps": 0.001}, {"type": "Tanh"},
  {"type": "MaxPool2d", "kernel": 3, "stride": 2, "padding": 1},
  {"type": "AvgPool2d", "kernel": 2, "stride": 1},
  {"type": "Flatten"}, {"type": "Dropout", "p": 0.2},
  {"type": "Linear", "out_features": 32}, {"type": "BatchNorm1d"}, {"type": "Sigmoid"},
  {"type": "Linear", "out_features": 10, "bias": false}, {"type": "LogSoftmax"}]}
JSON
cat >"$tmp/softmax.json" <<'JSON'
{"input": [1, 28, 28], "layers": [
  {"type": "Conv2d", "out_channels": 4, "kernel": 5, "stride": 2}, {"type": "ReLU"},
  {"type": "Flatten"}, {"type": "Linear", "out_features": 10}, {"type": "Softmax"}]}
JSON

passed=0
# run NAME TRAIN-FLAGS...: train, export, predict with scratchnet, check with onnx_check.py.
run() {
  local name=$1
  shift
  "$bin" train "$@" --dataset mnist --data-dir "$data" --limit-train 2000 --limit-test 500 \
    --epochs 1 --seed 1 --quiet --out "$tmp/$name" >/dev/null
  "$bin" export "$tmp/$name/model.safetensors" --onnx "$tmp/$name.onnx"
  "$bin" eval "$tmp/$name/model.safetensors" --data-dir "$data" --limit 2000 \
    --predictions "$tmp/$name.txt" >/dev/null
  echo "== $name"
  "$python" "$check" "$tmp/$name.onnx" --data-dir "$data/mnist" --limit 2000 \
    --predictions "$tmp/$name.txt" --model "$tmp/$name/model.safetensors"
  passed=$((passed + 1))
}
run basic --model basic
run every_kind --model "$tmp/every_kind.json" --lr 0.01 --normalize 0.1307 0.3081
run softmax --model "$tmp/softmax.json" --lr 0.01
echo "$passed passed, 0 failed"
