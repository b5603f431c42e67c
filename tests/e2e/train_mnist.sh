#!/usr/bin/env bash
# End to end through the program on a small real subset of MNIST: train 200 steps, evaluate,
# resume for 100 more, and check that the resumed run equals an uninterrupted one exactly,
# reaches the accuracy such a short run should and has a report of all its epochs; then prune
# it and fine-tune, and quantise it to int8.
#   tests/e2e/train_mnist.sh path/to/scratchnet DATA_DIR
set -euo pipefail
bin=$1 data=$2
if [ ! -f "$data/mnist/train-images-idx3-ubyte" ]; then
  echo "MNIST is not in $data/mnist: run scripts/fetch-data.sh first" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--model basic --dataset mnist --data-dir "$data" --limit-train 6400 --limit-test 2000
        --seed 3 --quiet)

"$bin" train "${common[@]}" --epochs 2 --out "$tmp/resumed"
"$bin" eval "$tmp/resumed/model.safetensors" --data-dir "$data" --limit 2000
"$bin" train --resume "$tmp/resumed" --epochs 3 --data-dir "$data" --quiet
"$bin" train "${common[@]}" --epochs 3 --out "$tmp/straight"

a=$("$bin" eval "$tmp/resumed/model.safetensors" --data-dir "$data" --limit 2000 --json)
b=$("$bin" eval "$tmp/straight/model.safetensors" --data-dir "$data" --limit 2000 --json)
[ "$a" = "$b" ] || { echo "FAIL resumed run differs from the uninterrupted one:"; echo "$a"; echo "$b"; exit 1; }
[ "$(wc -l <"$tmp/resumed/metrics.jsonl")" -eq 3 ] || { echo "FAIL metrics.jsonl should have 3 epochs"; exit 1; }
[ -s "$tmp/resumed/report.html" ] || { echo "FAIL the resumed run has no report.html"; exit 1; }
[ "$(grep -c '^<tr><td>[0-9]' "$tmp/resumed/report.html")" -eq 3 ] ||
  { echo "FAIL report.html should list 3 epochs"; exit 1; }
accuracy=$(printf '%s' "$a" | grep -o '"accuracy":[0-9.]*' | head -1 | cut -d: -f2)
echo "accuracy after 300 steps on 6,400 images: $accuracy (resumed run identical to uninterrupted)"
awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.94) }' || { echo "FAIL accuracy $accuracy < 0.94"; exit 1; }
# Pruning the trained model to 50% and 90% (one global threshold), each fine-tuned for one
# epoch on the same images: the files hold the sparsity, and eval reads back the accuracy
# prune reported.
p=$("$bin" prune "$tmp/straight/model.safetensors" --data-dir "$data" --sparsity 0.5,0.9 \
  --scope global --finetune-epochs 1 --limit-train 6400 --limit-test 2000 --out "$tmp/pruned" --json --quiet)
field() { printf '%s' "$p" | grep -o "\"$1\":[0-9.e-]*" | sed -n "$2p" | cut -d: -f2; }
achieved=$(field achieved_sparsity 2) pruned=$(field accuracy_pruned 2) tuned=$(field accuracy_finetuned 2)
echo "pruned to $achieved: accuracy $pruned, after one epoch of fine-tuning $tuned"
awk -v s="$achieved" 'BEGIN { exit !(s > 0.8999 && s < 0.9001) }' || { echo "FAIL achieved sparsity $achieved"; exit 1; }
awk -v a="$tuned" -v b="$pruned" 'BEGIN { exit !(a >= 0.94 && a > b) }' ||
  { echo "FAIL fine-tuning the 90% model: $pruned -> $tuned"; exit 1; }
c=$("$bin" eval "$tmp/pruned/model-s90.safetensors" --data-dir "$data" --limit 2000 --json)
[ "$(printf '%s' "$c" | grep -o '"accuracy":[0-9.]*' | head -1 | cut -d: -f2)" = "$tuned" ] ||
  { echo "FAIL eval of model-s90.safetensors differs from what prune reported ($tuned): $c"; exit 1; }

# int8: quantise the model, lose at most 0.5 points on these 2,000 images, and read back the
# int8 file with eval at the accuracy quantize reported.
q=$("$bin" quantize "$tmp/resumed/model.safetensors" --data-dir "$data" --limit 2000 \
      --calibration 500 --latency-images 20 -o "$tmp/int8.safetensors" --json)
float_acc=$(printf '%s' "$q" | grep -o '"float_accuracy":[0-9.]*' | cut -d: -f2)
int8_acc=$(printf '%s' "$q" | grep -o '"int8_accuracy":[0-9.]*' | cut -d: -f2)
echo "int8: $float_acc -> $int8_acc"
awk -v f="$float_acc" -v i="$int8_acc" 'BEGIN { exit !(f - i <= 0.005) }' ||
  { echo "FAIL int8 accuracy $int8_acc is more than 0.5 points below $float_acc"; exit 1; }
[ "$float_acc" = "$accuracy" ] || { echo "FAIL quantize measured the float model at $float_acc, eval at $accuracy"; exit 1; }
e=$("$bin" eval "$tmp/int8.safetensors" --data-dir "$data" --limit 2000 --json)
[ "$(printf '%s' "$e" | grep -o '"accuracy":[0-9.]*' | head -1 | cut -d: -f2)" = "$int8_acc" ] ||
  { echo "FAIL eval of the int8 file disagrees with quantize: $e"; exit 1; }
echo "1 passed, 0 failed"
