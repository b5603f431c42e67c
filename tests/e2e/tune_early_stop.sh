#!/usr/bin/env bash
# Through the program on a small learnable set made here: a validation split with early
# stopping keeps the best epoch in best.safetensors and resumes to the same stop; tune runs a
# grid and a budgeted random search, prints the ranked table and writes trials.jsonl.
#   tests/e2e/tune_early_stop.sh path/to/scratchnet
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# toy_set FILE-PREFIX N: N 28x28 images, image i of class i % 10: a bright 6x5 block at the
# class's place on a faint deterministic background (IDX, big-endian header).
toy_set() {
  LC_ALL=C awk -v n="$2" -v images="$1-images-idx3-ubyte" -v labels="$1-labels-idx1-ubyte" '
    function u32(f, v) { printf "%c%c%c%c", int(v / 16777216) % 256, int(v / 65536) % 256,
                                           int(v / 256) % 256, v % 256 > f }
    BEGIN {
      printf "%c%c%c%c", 0, 0, 8, 3 > images; u32(images, n); u32(images, 28); u32(images, 28)
      printf "%c%c%c%c", 0, 0, 8, 1 > labels; u32(labels, n)
      for (i = 0; i < n; i++) {
        c = i % 10; printf "%c", c > labels
        top = int(c / 5) * 14 + 2 + i % 3; left = (c % 5) * 5 + 1 + i % 2
        for (y = 0; y < 28; y++) for (x = 0; x < 28; x++) {
          on = y >= top && y < top + 6 && x >= left && x < left + 5
          printf "%c", on ? 200 + (i + x) % 50 : (i * 31 + y * 28 * 17 + x * 7) % 40 > images
        }
      }
    }'
}
mkdir -p "$tmp/toy"
toy_set "$tmp/toy/train" 240
toy_set "$tmp/toy/t10k" 60
fail() { echo "FAIL $*"; exit 1; }

# Early stopping on the validation accuracy: at least 3 epochs, fewer than 30.
common=(--model basic --dataset "$tmp/toy" --validation 0.25 --early-stop 2
        --early-stop-monitor val_accuracy --lr 3e-3 --seed 2 --threads 1 --quiet)
"$bin" train "${common[@]}" --epochs 30 --out "$tmp/straight" >"$tmp/straight.txt"
grep -q "^stopped early after epoch" "$tmp/straight.txt" || fail "no early stop: $(cat "$tmp/straight.txt")"
grep -q "^best epoch [0-9]* by val_accuracy: validation accuracy" "$tmp/straight.txt" ||
  fail "no best-epoch line: $(cat "$tmp/straight.txt")"
grep -q "180 training, 60 validation and 60 test images" "$tmp/straight.txt" ||
  fail "the split is not 180 + 60: $(head -1 "$tmp/straight.txt")"
epochs=$(wc -l <"$tmp/straight/metrics.jsonl")
[ "$epochs" -ge 3 ] && [ "$epochs" -lt 30 ] || fail "stopped after $epochs epochs"
grep -q '"val_accuracy":' "$tmp/straight/metrics.jsonl" || fail "metrics.jsonl has no val_accuracy"
# best.safetensors is the best epoch's model: its metrics are that epoch's line.
best=$(sed -n 's/^best epoch \([0-9]*\) .*/\1/p' "$tmp/straight.txt")
"$bin" info "$tmp/straight/best.safetensors" >"$tmp/best-info.txt"
grep -q "\"epoch\":$best," "$tmp/best-info.txt" || fail "best.safetensors is not epoch $best: $(cat "$tmp/best-info.txt")"
a=$("$bin" eval "$tmp/straight/best.safetensors" --dataset "$tmp/toy" --json)
[ -n "$a" ] || fail "eval of best.safetensors"

# Interrupted after 2 epochs and resumed: the same stop, the same weights.
"$bin" train "${common[@]}" --epochs 2 --out "$tmp/resumed" >/dev/null
"$bin" train --resume "$tmp/resumed" --epochs 30 --quiet --threads 1 >/dev/null
untimed() { sed -E 's/"(images_per_second|seconds)":[0-9.e+-]*,//g' "$1"; }
cmp -s <(untimed "$tmp/straight/metrics.jsonl") <(untimed "$tmp/resumed/metrics.jsonl") ||
  fail "the resumed run's metrics differ"
x=$("$bin" eval "$tmp/straight/model.safetensors" --dataset "$tmp/toy" --json)
y=$("$bin" eval "$tmp/resumed/model.safetensors" --dataset "$tmp/toy" --json)
[ "$x" = "$y" ] || fail "the resumed run's model differs"
if "$bin" train --resume "$tmp/resumed" --epochs 40 --quiet 2>"$tmp/err.txt"; then fail "resumed a stopped run"; fi
grep -q "stopped early after epoch $epochs" "$tmp/err.txt" || fail "$(cat "$tmp/err.txt")"
echo "early stopping: stopped after $epochs epochs (best $best), resumed run identical"

# A grid of 4 trials: the ranked table, 4 lines of trials.jsonl and the best model.
"$bin" tune --model basic --dataset "$tmp/toy" --lr 1e-3,3e-3 --batch-size 16,32 --epochs 1 \
  --threads 1 --out "$tmp/tune" >"$tmp/tune.txt"
cat "$tmp/tune.txt"
grep -q "^4 of 4 trials ran$" "$tmp/tune.txt" || fail "not 4 trials"
grep -q "^rank  trial" "$tmp/tune.txt" || fail "no table"
[ "$(grep -c '^trial [1-4]/4 ' "$tmp/tune.txt")" -eq 4 ] || fail "not one line per trial"
[ "$(wc -l <"$tmp/tune/trials.jsonl")" -eq 4 ] || fail "trials.jsonl should have 4 lines"
[ -s "$tmp/tune/model.safetensors" ] || fail "no best model"
if "$bin" tune --dataset "$tmp/toy" --lr 1e-3 --out "$tmp/tune" 2>/dev/null; then fail "replaced a search"; fi

# Random search with an epoch budget: 2 of 3 trials run; --json is one object.
j=$("$bin" tune --model basic --dataset "$tmp/toy" --search random --trials 3 --lr 1e-4:1e-2 \
  --epochs 1 --budget-epochs 2 --threads 1 --out "$tmp/random" --json 2>/dev/null)
printf '%s' "$j" | grep -q '"ran":2,' || fail "budget: $j"
printf '%s' "$j" | grep -q '"planned":3' || fail "planned: $j"
[ "$(wc -l <"$tmp/random/trials.jsonl")" -eq 2 ] || fail "trials.jsonl should have 2 lines"
echo "tune: grid and random search ok"
