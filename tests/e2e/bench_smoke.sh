#!/usr/bin/env bash
# Smoke test of bench/model_bench, the scratchnet side of bench/compare.py: every mode runs for
# a moment and prints one JSON line with the fields compare.py reads; bad flags and missing
# data are one-line errors with a non-zero exit. Needs no PyTorch. Without MNIST in
# DATA_DIR/mnist only the data-free checks run and the test reports itself skipped (77).
#   tests/e2e/bench_smoke.sh path/to/model_bench DATA_DIR
set -euo pipefail
bin=$1 data=$2/mnist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# field JSON NAME: the raw value of "NAME" in a one-line JSON object ("" when absent).
field() { printf '%s' "$1" | grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2- || true; }

# expect LABEL JSON NAME=VALUE... (exact) and NAME>0 (a positive number).
expect() {
  local label=$1 json=$2 ok=1
  shift 2
  for check in "$@"; do
    if [[ $check == *">0" ]]; then
      local name=${check%>0} v
      v=$(field "$json" "$name")
      awk -v v="$v" 'BEGIN { exit !(v != "" && v + 0 > 0) }' ||
        { fail "$label: $name should be a positive number, got '$v'"; ok=0; }
    else
      local name=${check%%=*} want=${check#*=} v
      v=$(field "$json" "$name")
      [ "$v" = "$want" ] || { fail "$label: $name should be $want, got '$v'"; ok=0; }
    fi
  done
  [ $ok = 1 ] && passed=$((passed + 1))
  return 0
}

# run LABEL ARGS...: sets j to model_bench's stdout, which must be exactly one JSON line.
run() {
  local label=$1
  shift
  j=""
  if ! "$bin" "$@" >"$tmp/out" 2>"$tmp/err"; then
    fail "$label: exit status non-zero: $(tail -1 "$tmp/err")"
    return 0
  fi
  j=$(cat "$tmp/out")
  [ "$(wc -l <"$tmp/out")" -eq 1 ] && [[ $j == "{"*"}" ]] ||
    fail "$label: expected one JSON line, got: $j"
}

# error LABEL STATUS TEXT ARGS...: exits with STATUS and one stderr line containing TEXT.
error() {
  local label=$1 status=$2 text=$3 got=0
  shift 3
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
  if [ "$got" -ne "$status" ]; then
    fail "$label: exit status $got, expected $status"
  elif [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -qF -- "$text" "$tmp/err"; then
    fail "$label: expected one stderr line containing '$text', got: $(cat "$tmp/err")"
  elif [ -s "$tmp/out" ]; then
    fail "$label: printed on stdout: $(cat "$tmp/out")"
  else
    passed=$((passed + 1))
  fi
}

common=(framework='"scratchnet"' threads=2 peak_rss_mib\>0)

run sgemm sgemm --size 96 --reps 2 --threads 2
expect sgemm "$j" "${common[@]}" mode='"sgemm"' size=96 reps=2 gflops\>0 median_gflops\>0
[[ $(field "$j" isa) =~ ^\"(avx512|avx2|generic)\"$ ]] ||
  fail "sgemm: isa should be avx512, avx2 or generic, got $(field "$j" isa)"

error "unknown flag" 2 "--bogus" train --bogus
error "unknown model" 2 "--model" train --model nosuch
error "steps and epochs" 2 "excludes" train --steps 3 --epochs 1
error "no mode" 2 "subcommand"
error "missing data" 1 "fetch-data.sh" infer --data "$tmp/nothing"
error "zero steps" 2 "--steps" train --steps 0

if [ ! -f "$data/train-images-idx3-ubyte" ] && [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
  echo "MNIST is not in $data (scripts/fetch-data.sh mnist): skipped the modes that need it"
  echo "$passed passed, $failures failed"
  [ "$failures" -eq 0 ] || exit 1
  exit 77
fi

run "train basic" train --model basic --data "$data" --steps 3 --warmup 1 --threads 2
expect "train basic" "$j" "${common[@]}" mode='"train"' model='"basic"' optimizer='"adam"' \
  batch=64 steps=3 warmup_steps=1 images=192 train_images=60000 flops_per_image=5342122 \
  images_per_second\>0 seconds_per_epoch\>0 seconds\>0 mean_loss\>0 rss_before_train_mib\>0

# 650 images: 10 full batches and a partial one of 10 per epoch.
run "train epochs" train --model basic --data "$data" --epochs 2 --limit 650 --warmup 0 --threads 1
expect "train epochs" "$j" framework='"scratchnet"' threads=1 epochs=2 steps=22 images=1300 \
  train_images=650 seconds_per_epoch\>0

run "train bn" train --model bn --data "$data" --steps 1 --warmup 0 --threads 2
expect "train bn" "$j" "${common[@]}" model='"bn"' optimizer='"sgd"' steps=1 images=64 \
  flops_per_image=32905994 images_per_second\>0 mean_loss\>0

run "infer basic" infer --model basic --data "$data" --batch 100 --batches 3 --threads 2
expect "infer basic" "$j" "${common[@]}" mode='"infer"' batch=100 batches=3 images=300 \
  flops_per_image=5342122 images_per_second\>0 seconds\>0

run "latency bn" latency --model bn --data "$data" --reps 5 --warmup 1 --threads 2
expect "latency bn" "$j" "${common[@]}" mode='"latency"' batch=1 reps=5 warmup=1 \
  median_ms\>0 p10_ms\>0 p90_ms\>0 min_ms\>0 images_per_second\>0

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
