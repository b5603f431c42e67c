#!/usr/bin/env bash
# Transfer against scratch (docs/FINETUNING.md): a model trained on MNIST, fine-tuned on
# Fashion-MNIST, against the same architecture trained from scratch on the same images with
# the same epochs; Fashion-MNIST test accuracy per seed, then mean and spread.
#   bench/transfer.sh MODEL PRESET PER_CLASS EPOCHS "SEEDS" [finetune flags...]
# MODEL is the trained model file or run directory, PRESET its architecture (basic, bn).
# PER_CLASS 0 takes the whole training set. Runs go to runs/transfer/. SCRATCHNET names the
# program (default build/scratchnet).
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1 preset=$2 per_class=$3 epochs=$4 seeds=$5
shift 5
bin=${SCRATCHNET:-build/scratchnet}
limit=()
[ "$per_class" -gt 0 ] && limit=(--per-class "$per_class")
# Both commands end with "test accuracy 87.65% (8765/10000) after 20 epochs, ...".
acc() { sed -n 's/^test accuracy \([0-9.]*\)% ([0-9]*\/[0-9]*) after .*/\1/p' "$1" | tail -1; }
mkdir -p runs/transfer
ft=() sc=()
for seed in $seeds; do
  out=runs/transfer/pc$per_class-e$epochs-s$seed
  "$bin" finetune "$model" --dataset fashion-mnist "${limit[@]}" --epochs "$epochs" --seed "$seed" \
    --quiet --force --out "$out-finetune" "$@" >"$out-finetune.log"
  "$bin" train --model "$preset" --dataset fashion-mnist "${limit[@]}" --epochs "$epochs" \
    --seed "$seed" --quiet --force --out "$out-scratch" >"$out-scratch.log"
  ft+=("$(acc "$out-finetune.log")") sc+=("$(acc "$out-scratch.log")")
  echo "seed $seed: fine-tuned ${ft[-1]}%, from scratch ${sc[-1]}%"
done
stats() { printf '%s\n' "$@" | awk '{ s += $1; q += $1 * $1; n++; if (n == 1 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 }
  END { m = s / n; printf "%.2f%% ± %.2f (min %.2f, max %.2f)", m, sqrt((q - n * m * m) / (n > 1 ? n - 1 : 1)), lo, hi }'; }
echo "fine-tuned:   $(stats "${ft[@]}")"
echo "from scratch: $(stats "${sc[@]}")"
