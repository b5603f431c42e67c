#!/usr/bin/env bash
# Fine-tuning on a person's own images, end to end: MNIST test digits redrawn as a person would
# hand them over (dark ink on light 200x200 paper, enlarged, off-centre; predict_redraw), only
# the classes 0-4, as a folder data set DIR/{train,test}/<class>/*.png|jpg. A model trained
# briefly on MNIST gets a new five-class head and is fine-tuned on the train folder with its
# convolutions frozen; it must reach >= 90% on the held-out test folder, and its model file must
# record where it came from.
#   tests/e2e/finetune_folder.sh path/to/scratchnet path/to/predict_redraw DATA_DIR
set -euo pipefail
bin=$1 redraw=$2 data=$3
if [ ! -f "$data/mnist/t10k-images-idx3-ubyte" ]; then
  echo "MNIST is not in $data/mnist: run scripts/fetch-data.sh first" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin" train --model basic --dataset mnist --data-dir "$data" --epochs 1 --limit-train 20000 \
  --limit-test 1000 --seed 1 --quiet --out "$tmp/mnist" >/dev/null

# 600 digits to learn from and 1000 others to test on; classes 5-9 are dropped.
"$redraw" "$data/mnist" "$tmp/set/train" 8000 1200 3
"$redraw" "$data/mnist" "$tmp/set/test" 0 2000 4
for c in 5 6 7 8 9; do rm -rf "$tmp/set/train/$c" "$tmp/set/test/$c"; done

"$bin" finetune "$tmp/mnist" --dataset "$tmp/set" --freeze features --epochs 3 --lr 0.003 \
  --seed 2 --quiet --out "$tmp/ft" | tee "$tmp/log.txt"
read -r before after < <(sed -n 's/^test accuracy \([0-9.]*\)% before fine-tuning, \([0-9.]*\)% after$/\1 \2/p' "$tmp/log.txt")
[ -n "${after:-}" ] || { echo "FAIL finetune printed no before/after line"; exit 1; }
awk -v a="$after" 'BEGIN { exit !(a >= 90) }' ||
  { echo "FAIL fine-tuned accuracy on the held-out images is $after%, expected >= 90%"; exit 1; }
awk -v a="$after" -v b="$before" 'BEGIN { exit !(a > b + 40) }' ||
  { echo "FAIL fine-tuning did not help: $before% before, $after% after"; exit 1; }

info=$("$bin" info "$tmp/ft/model.safetensors")
grep -q "classes: 0, 1, 2, 3, 4$" <<<"$info" || { echo "FAIL the model's classes: $info"; exit 1; }
grep -q "$tmp/mnist/model.safetensors, fine-tuned on $tmp/set: new head" <<<"$info" ||
  { echo "FAIL the model does not record its origin: $info"; exit 1; }
# The fine-tuned model reads the person's images directly.
"$bin" predict "$tmp/ft/model.safetensors" "$tmp"/set/test/3/* --top 1 >"$tmp/pred.txt"
right=$(grep -c ': 3 (' "$tmp/pred.txt" || true)
total=$(wc -l <"$tmp/pred.txt")
awk -v r="$right" -v t="$total" 'BEGIN { exit !(r >= 0.85 * t) }' ||
  { echo "FAIL predict recognised $right of $total threes"; exit 1; }
echo "folder fine-tuning: $before% before, $after% after on the held-out images; predict: $right/$total threes"
