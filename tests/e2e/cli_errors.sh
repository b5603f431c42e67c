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

# Learning-rate schedules: bad values and flags that do not go together.
sched() { expect_error "$1" "$2" -- "$bin" train --dataset "$tmp/good" --out "$tmp/r" "${@:4}"; }
sched "unknown schedule" "--schedule: warm not in" -- --schedule warm
sched "milestones not increasing" "--milestones must be strictly increasing, got 6,3" -- \
  --schedule multistep --milestones 6,3
sched "milestone 0" "--milestones: each must be at least 1, got 0,3" -- --schedule multistep --milestones 0,3
sched "multistep without milestones" "--schedule multistep needs --milestones" -- --schedule multistep
sched "step without step size" "--schedule step needs --step-size N" -- --schedule step
sched "schedule flag without --schedule" "--patience needs --schedule (plateau)" -- --patience 2
sched "flag of another schedule" "--milestones does not apply to --schedule step (only to multistep)" -- \
  --schedule step --step-size 2 --milestones 3
sched "onecycle per epoch" "--schedule-unit does not apply to --schedule onecycle" -- \
  --schedule onecycle --schedule-unit epoch
sched "warm-up as long as the run" "schedule.warmup of 2 epochs leaves no epoch to anneal in a run of 2 epochs" -- \
  --schedule cosine --warmup 2 --epochs 2
sched "plateau factor above 1" "schedule.factor must be in (0, 1), got 2" -- --schedule plateau --factor 2
sched "zero gamma" "--gamma: must be positive, got 0" -- --schedule exponential --gamma 0

# Regularisation, validation split and early stopping.
sched "validation 0" "--validation: must be in (0, 1), got 0" -- --validation 0
sched "validation 1" "--validation: must be in (0, 1), got 1" -- --validation 1
sched "negative validation" "--validation: must be in (0, 1), got -0.1" -- --validation=-0.1
sched "validation that holds out nothing" "validation fraction 0.1 holds out no image of $tmp/good/train-images-idx3-ubyte (4 images)" -- \
  --validation 0.1
sched "early stop patience 0" "--early-stop: must be positive, got 0" -- --early-stop 0 --validation 0.5
sched "early stop without a validation set" "--early-stop needs a set to watch: give --validation F" -- --early-stop 3
sched "min delta without early stopping" "--min-delta needs --early-stop N or --validation F" -- --min-delta 0.01
sched "negative l1" "--l1: must be at least 0, got -1" -- --l1=-1
sched "plateau on a validation set that is not there" "schedule.monitor is val_loss, but validation is 0" -- \
  --schedule plateau --monitor val_loss

# tune: the search space and its flags.
tune() { expect_error "tune: $1" "$2" -- "$bin" tune --dataset "$tmp/good" --out "$tmp/t" "${@:4}"; }
tune "empty grid value" "--lr 1e-3,,3e-3: empty value in '1e-3,,3e-3'" -- --lr 1e-3,,3e-3
tune "range with LO >= HI" "--lr 1e-2:1e-4: range 1e-2:1e-4 needs LO < HI" -- --search random --trials 2 --lr 1e-2:1e-4
tune "log range from 0" "--weight-decay 0:1e-3: range 0:1e-3 is sampled log-uniformly and needs LO > 0" -- \
  --search random --trials 2 --weight-decay 0:1e-3
tune "range in a grid" "--search grid cannot take the range 0.0001:0.01 of lr" -- --lr 1e-4:1e-2
tune "bad batch size" "--batch-size 32,0: batch size must be at least 1, got 0" -- --batch-size 32,0
tune "range of batch sizes" "--batch-size 16:64: '16:64' is a range, but batch_size takes a list" -- \
  --search random --trials 2 --batch-size 16:64
tune "unknown parameter" "--dropout" -- --dropout 0.1,0.2
tune "random without --trials" "--search random needs --trials N" -- --search random --lr 1e-4:1e-2
tune "--trials with a grid" "--trials applies to --search random" -- --trials 3 --lr 1e-3
tune "zero budget" "--budget: must be positive, got 0" -- --budget 0
[ ! -e "$tmp/t" ] || { echo "FAIL a failed tune created $tmp/t"; failures=$((failures + 1)); }

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
expect_error "more images per class than a class has" "fewer than the 50 per class asked for" -- \
  "$bin" train --model basic --dataset "$tmp/good" --per-class 50 --out "$tmp/few"
expect_error "existing run is not overwritten" "already holds a run" -- \
  "$bin" train --model basic --dataset "$tmp/good" --epochs 1 --out "$tmp/run"
expect_error "resume with changed recipe" "--lr cannot be given with --resume" -- \
  "$bin" train --resume "$tmp/run" --lr 0.1
expect_error "resume with a new schedule" "--schedule cannot be given with --resume" -- \
  "$bin" train --resume "$tmp/run" --schedule exponential --gamma 0.9
expect_error "resume with a validation split" "--validation cannot be given with --resume" -- \
  "$bin" train --resume "$tmp/run" --validation 0.5
"$bin" train --model basic --dataset "$tmp/good" --epochs 1 --schedule cosine --out "$tmp/cos" --quiet >/dev/null ||
  { echo "FAIL could not train with a cosine schedule"; exit 1; }
expect_error "resume a cosine run for more epochs" "--epochs cannot change when resuming a run with a cosine schedule" -- \
  "$bin" train --resume "$tmp/cos" --epochs 3

# export: the model must be an existing model file, --onnx a file in an existing directory.
expect_error "export: model file that does not exist" "model 'nope.safetensors' is neither a preset" -- \
  "$bin" export nope.safetensors --onnx "$tmp/m.onnx"
echo "these are notes, not a model file" >"$tmp/notes.txt"
expect_error "export: not a model file" "notes.txt: header length" -- \
  "$bin" export "$tmp/notes.txt" --onnx "$tmp/m.onnx"
expect_error "export: truncated model file" "truncated.safetensors" -- \
  "$bin" export "$tmp/truncated.safetensors" --onnx "$tmp/m.onnx"
expect_error "export: a preset has no weights" "'basic' has no trained weights" -- \
  "$bin" export basic --onnx "$tmp/m.onnx"
expect_error "export: output directory missing" "--onnx $tmp/none/m.onnx: directory '$tmp/none' does not exist" -- \
  "$bin" export "$model" --onnx "$tmp/none/m.onnx"
expect_error "export: --onnx missing" "--onnx is required" -- "$bin" export "$model"
[ ! -e "$tmp/m.onnx" ] || { echo "FAIL a failed export left $tmp/m.onnx"; failures=$((failures + 1)); }

# quantize: a model file, positive counts, an existing output directory, not int8 already.
expect_error "quantize: model file that does not exist" "model 'nope.safetensors' is neither a preset" -- \
  "$bin" quantize nope.safetensors --dataset "$tmp/good"
expect_error "quantize: a preset has no weights" "'basic' has no trained weights" -- \
  "$bin" quantize basic --dataset "$tmp/good"
expect_error "quantize: output directory missing" "--out $tmp/none/q.safetensors: directory '$tmp/none' does not exist" -- \
  "$bin" quantize "$model" --dataset "$tmp/good" -o "$tmp/none/q.safetensors"
expect_error "quantize: zero calibration images" "--calibration: must be positive, got 0" -- \
  "$bin" quantize "$model" --dataset "$tmp/good" --calibration 0
"$bin" quantize "$model" --dataset "$tmp/good" --calibration 4 --latency-images 2 -o "$tmp/q.safetensors" >/dev/null ||
  { echo "FAIL quantize on a good model"; failures=$((failures + 1)); }
expect_error "quantize: already int8" "is already an int8 model" -- \
  "$bin" quantize "$tmp/q.safetensors" --dataset "$tmp/good"
expect_error "export: an int8 model has no ONNX form" "no ONNX export for this layer kind" -- \
  "$bin" export "$tmp/q.safetensors" --onnx "$tmp/q.onnx"

# predict: images must exist and be whole PNG/JPEG files with ink; the model a model file.
# digit.png: an 8x8 gray PNG, a black 4x4 square on white; blank.png: 4x4 white.
printf '\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x08\x00\x00\x00\x08\x08\x00\x00\x00\x00\xe1\x64\xe1\x57\x00\x00\x00\x15\x49\x44\x41\x54\x78\xda\x63\xf8\x0f\x05\x0c\x48\x0c\x06\x20\x20\xc4\x40\xd3\x05\x00\xb9\xe2\x2f\xd1\x71\x78\x5a\x4a\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82' >"$tmp/digit.png"
printf '\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x04\x00\x00\x00\x04\x08\x00\x00\x00\x00\x8c\x9a\xc1\xa2\x00\x00\x00\x0e\x49\x44\x41\x54\x78\xda\x63\xf8\x0f\x04\x0c\xa8\x04\x00\x9f\x74\x0f\xf1\x46\x09\xcd\xc9\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82' >"$tmp/blank.png"
head -c 40 "$tmp/digit.png" >"$tmp/cut.png"
echo "not an image" >"$tmp/predict-notes.png"
"$bin" predict "$model" "$tmp/digit.png" >/dev/null ||
  { echo "FAIL predict on a good PNG"; failures=$((failures + 1)); }
"$bin" predict "$tmp/q.safetensors" "$tmp/digit.png" >/dev/null 2>&1 ||
  { echo "FAIL predict with an int8 model"; failures=$((failures + 1)); }
expect_error "predict: model file that does not exist" "model 'nope.safetensors' is neither a preset" -- \
  "$bin" predict nope.safetensors "$tmp/digit.png"
expect_error "predict: a preset has no weights" "'basic' has no trained weights" -- \
  "$bin" predict basic "$tmp/digit.png"
expect_error "predict: image that does not exist" "$tmp/none.png: no such file" -- \
  "$bin" predict "$model" "$tmp/digit.png" "$tmp/none.png"
expect_error "predict: not an image" "predict-notes.png: not a PNG or JPEG image, nor an IDX file" -- \
  "$bin" predict "$model" "$tmp/predict-notes.png"
expect_error "predict: truncated PNG" "cut.png: corrupt or truncated png" -- \
  "$bin" predict "$model" "$tmp/cut.png"
expect_error "predict: blank image" "blank.png: no ink found: the image is blank" -- \
  "$bin" predict "$model" "$tmp/blank.png"
expect_error "predict: --index past the IDX file" "--index 9: $tmp/good/train-images-idx3-ubyte holds images 0 to 3" -- \
  "$bin" predict "$model" "$tmp/good/train-images-idx3-ubyte" --index 9
expect_error "predict: --top 0" "--top" -- "$bin" predict "$model" "$tmp/digit.png" --top 0

# prune: sparsities in [0, 1), a model file, an --out that can be written; checked before any work.
expect_error "prune: sparsity 1" "--sparsity: each must be in [0, 1) (the fraction of weights set to 0), got 1" -- \
  "$bin" prune "$model" --sparsity 0.5,1 --dataset "$tmp/good" --out "$tmp/pruned"
expect_error "prune: negative sparsity" "--sparsity: each must be in [0, 1)" -- \
  "$bin" prune "$model" --sparsity=-0.5 --dataset "$tmp/good"
expect_error "prune: empty sparsity list" "--sparsity: give at least one sparsity" -- \
  "$bin" prune "$model" --sparsity "" --dataset "$tmp/good"
expect_error "prune: sparsity not a number" "--sparsity: 'half' is not a number (in '0.5,half')" -- \
  "$bin" prune "$model" --sparsity 0.5,half --dataset "$tmp/good"
expect_error "prune: sparsity listed twice" "--sparsity: 0.5 is listed twice" -- \
  "$bin" prune "$model" --sparsity 0.5,0.9,0.5 --dataset "$tmp/good"
expect_error "prune: unknown scope" "--scope: blockwise not in" -- \
  "$bin" prune "$model" --scope blockwise --dataset "$tmp/good"
expect_error "prune: --lr without fine-tuning" "--lr applies to fine-tuning: give --finetune-epochs N" -- \
  "$bin" prune "$model" --lr 0.01 --dataset "$tmp/good"
expect_error "prune: model file that does not exist" "model 'nope.safetensors' is neither a preset" -- \
  "$bin" prune nope.safetensors --dataset "$tmp/good"
expect_error "prune: a preset has no weights" "'basic' has no trained weights" -- \
  "$bin" prune basic --dataset "$tmp/good"
expect_error "prune: --out that cannot be created" "--out $tmp/notes.txt/pruned: cannot create the directory" -- \
  "$bin" prune "$model" --dataset "$tmp/good" --out "$tmp/notes.txt/pruned"
expect_error "prune: --out is a file" "--out $tmp/notes.txt: not a directory" -- \
  "$bin" prune "$model" --dataset "$tmp/good" --out "$tmp/notes.txt"
expect_error "prune: missing data set" "dataset 'mnist' not found in $tmp/none/mnist" -- \
  "$bin" prune "$model" --dataset mnist --data-dir "$tmp/none" --out "$tmp/pruned"
[ ! -e "$tmp/pruned" ] || { echo "FAIL a failed prune created $tmp/pruned"; failures=$((failures + 1)); }
"$bin" prune "$model" --sparsity 0.5 --dataset "$tmp/good" --finetune-epochs 1 --out "$tmp/pruned" --quiet >/dev/null ||
  { echo "FAIL prune on a good model"; failures=$((failures + 1)); }
[ -s "$tmp/pruned/model-s50.safetensors" ] ||
  { echo "FAIL prune wrote no $tmp/pruned/model-s50.safetensors"; failures=$((failures + 1)); }

# finetune: the bad input of transfer learning.
expect_error "finetune: head size of zero" "--classes: must be positive, got 0" -- \
  "$bin" finetune "$model" --dataset "$tmp/good" --classes 0 --out "$tmp/ft"
expect_error "finetune: head smaller than the data's classes" "--classes 5: $tmp/good has 10 classes" -- \
  "$bin" finetune "$model" --dataset "$tmp/good" --classes 5 --out "$tmp/ft"
expect_error "finetune: freezing a layer that does not exist" "freeze 'conv9': no layer is of that kind or group" -- \
  "$bin" finetune "$model" --dataset "$tmp/good" --freeze features,conv9 --out "$tmp/ft"
expect_error "finetune: freezing an index past the last layer" "freeze '42': the model has no layer 42" -- \
  "$bin" finetune "$model" --dataset "$tmp/good" --freeze 42 --out "$tmp/ft"
expect_error "finetune: freezing everything" "every layer with parameters would be frozen" -- \
  "$bin" finetune "$model" --dataset "$tmp/good" --freeze backbone,9 --out "$tmp/ft"
expect_error "finetune: unfreezing without freezing" "--unfreeze-every needs --freeze" -- \
  "$bin" finetune "$model" --dataset "$tmp/good" --unfreeze-every 1 --out "$tmp/ft"
expect_error "finetune: keeping a head of the wrong size" "--head keep: the model predicts 10 classes, but $tmp/good needs 12" -- \
  "$bin" finetune "$model" --dataset "$tmp/good" --classes 12 --head keep --out "$tmp/ft"
expect_error "finetune: a preset has no weights" "finetune starts from a trained model" -- \
  "$bin" finetune basic --dataset "$tmp/good" --out "$tmp/ft"
expect_error "finetune: model of another architecture" "tensor '7.weight' has shape (128, 1600) but the architecture needs (127, 1600)" -- \
  "$bin" finetune "$tmp/other.safetensors" --dataset "$tmp/good" --out "$tmp/ft"
expect_error "finetune: model built for other images" "images of shape (1, 14, 14) do not fit $model, built for (1, 28, 28)" -- \
  "$bin" finetune "$model" --dataset "$tmp/small" --out "$tmp/ft"
expect_error "finetune: the data set is required" "--dataset is required" -- \
  "$bin" finetune "$model"
mkdir -p "$tmp/faces/happy" "$tmp/faces/sad"
cp "$tmp/digit.png" "$tmp/faces/happy/a.png"
expect_error "finetune: an empty class folder" "sad" -- \
  "$bin" finetune "$model" --dataset "$tmp/faces" --out "$tmp/ft"
cp "$tmp/digit.png" "$tmp/faces/sad/a.png"; cp "$tmp/cut.png" "$tmp/faces/sad/b.png"
expect_error "finetune: an unreadable image" "$tmp/faces/sad/b.png" -- \
  "$bin" finetune "$model" --dataset "$tmp/faces" --out "$tmp/ft"
[ ! -e "$tmp/ft" ] || { echo "FAIL a failed finetune created $tmp/ft"; failures=$((failures + 1)); }

# augment: bad values name the option; the preview is a PNG of the grid's size.
expect_error "augment: rotation past 180 degrees" "augment.rotate must be in [0, 180], got 200" -- \
  "$bin" augment --dataset "$tmp/good" --rotate 200 --out "$tmp/grid.png"
expect_error "augment: scale range upside down" "augment.scale_max must be in [scale_min (1.1), 10], got 0.9" -- \
  "$bin" augment --dataset "$tmp/good" --scale 1.1,0.9 --out "$tmp/grid.png"
expect_error "augment: elastic without sigma" "--elastic: At least 2 required" -- \
  "$bin" augment --dataset "$tmp/good" --elastic 34 --out "$tmp/grid.png"
expect_error "augment: nothing to show" "nothing to show: give --augment" -- \
  "$bin" augment --dataset "$tmp/good" --out "$tmp/grid.png"
expect_error "augment: --no-augment with a flag" "--no-augment cannot be given with --shift" -- \
  "$bin" augment --dataset "$tmp/good" --no-augment --shift 0.1 --out "$tmp/grid.png"
expect_error "augment: output directory missing" "--out $tmp/none/grid.png: directory '$tmp/none' does not exist" -- \
  "$bin" augment --dataset "$tmp/good" --augment --out "$tmp/none/grid.png"
expect_error "train: erasing probability above 1" "augment.erase must be in [0, 1], got 2" -- \
  "$bin" train --dataset "$tmp/good" --erase 2 --out "$tmp/r"
expect_error "resume with new augmentation" "--augment cannot be given with --resume" -- \
  "$bin" train --resume "$tmp/run" --augment
# 2 rows of 3 cells of 28 x 28 with 1-pixel lines between them: 86 x 57 pixels.
if "$bin" augment --dataset "$tmp/good" --augment --elastic 34,4 --rows 2 --cols 3 --zoom 1 \
  --out "$tmp/grid.png" >/dev/null; then
  header=$(od -An -tx1 -N24 "$tmp/grid.png" | tr -d ' \n')
  if [ "$header" = "89504e470d0a1a0a0000000d494844520000005600000039" ]; then
    passed=$((passed + 1)); echo "ok   augment: writes an 86x57 PNG"
  else
    echo "FAIL augment: $tmp/grid.png starts $header, not an 86x57 PNG"; failures=$((failures + 1))
  fi
else
  echo "FAIL augment on a good set"; failures=$((failures + 1))
fi

echo "$passed passed, $failures failed"
[ $failures -eq 0 ]
