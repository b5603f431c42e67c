#!/usr/bin/env bash
# Reading people's own images, end to end: MNIST test digits redrawn as a person would (dark
# ink on light 200x200 paper, enlarged, off-centre, some blurred or noisy; PNG and JPEG, gray,
# RGB and RGBA) must be recognised by `scratchnet predict` with a trained model at >= 97% and
# at most 1.5 points below the same digits as IDX images, and `scratchnet eval` on the same
# images as a folder data set must agree exactly.
#   tests/e2e/predict_mnist.sh path/to/scratchnet path/to/predict_redraw DATA_DIR [MODEL] [COUNT]
# Without MODEL, `basic` is trained for two epochs first (98.28% on MNIST's test set, ~2 min).
set -euo pipefail
bin=$1 redraw=$2 data=$3 model=${4:-} count=${5:-1000}
if [ ! -f "$data/mnist/t10k-images-idx3-ubyte" ]; then
  echo "MNIST is not in $data/mnist: run scripts/fetch-data.sh first" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -z "$model" ]; then
  "$bin" train --model basic --dataset mnist --data-dir "$data" --epochs 2 --seed 1 --quiet \
    --out "$tmp/run" >/dev/null
  model=$tmp/run/model.safetensors
fi
original=$("$bin" eval "$model" --data-dir "$data" --limit "$count" --json |
  grep -o '"accuracy":[0-9.]*' | head -1 | cut -d: -f2)

# test/: the first COUNT test digits redrawn; train/: 100 others (the folder layout needs both).
"$redraw" "$data/mnist" "$tmp/set/test" 0 "$count" 7
"$redraw" "$data/mnist" "$tmp/set/train" 9000 100 8

# One line per file: "DIR/<label>/<index>.png: <class> (<p>%)".
"$bin" predict "$model" "$tmp"/set/test/*/* --top 1 >"$tmp/predictions.txt"
read -r total correct < <(awk -F': ' '{ n = split($1, p, "/"); split($2, c, " ");
  t++; if (p[n - 1] == c[1]) k++ } END { print t, k + 0 }' "$tmp/predictions.txt")
[ "$total" -eq "$count" ] || { echo "FAIL predict printed $total lines for $count images"; exit 1; }
accuracy=$(awk -v k="$correct" -v t="$total" 'BEGIN { printf "%.4f", k / t }')
echo "redrawn digits: $correct/$total = $accuracy (the same $count digits as IDX: $original)"

# The same images as a folder data set through eval: the same conversion, the same answers.
folder=$("$bin" eval "$model" --dataset "$tmp/set" --json)
folder_correct=$(printf '%s' "$folder" | grep -o '"correct":[0-9]*' | cut -d: -f2)
[ "$folder_correct" -eq "$correct" ] ||
  { echo "FAIL eval on the folder: $folder_correct correct, predict: $correct"; exit 1; }

# --json: the file, its class and the top classes, the best first.
read -r one label < <(awk -F': ' '{ n = split($1, p, "/"); split($2, c, " ");
  if (p[n - 1] == c[1]) { print $1, c[1]; exit } }' "$tmp/predictions.txt")
json=$("$bin" predict "$model" "$one" --json --top 2)
[[ "$json" == *"{\"class\":\"$label\",\"file\":\"$one\",\"top\":[{\"class\":\"$label\",\"label\":$label,"* ]] ||
  { echo "FAIL --json output: $json"; exit 1; }

awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.97) }' || { echo "FAIL accuracy $accuracy < 0.97"; exit 1; }
awk -v a="$accuracy" -v o="$original" 'BEGIN { exit !(a >= o - 0.015) }' ||
  { echo "FAIL redrawn digits lose more than 1.5 points: $accuracy against $original"; exit 1; }
echo "1 passed, 0 failed"
