// training.h — what train and finetune share: the recipe flags, the run directory's settings,
// and the training loop that writes the run directory.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "scratchnet/data/dataset.h"
#include "scratchnet/io/model_file.h"
#include "scratchnet/train/recipe.h"
#include "scratchnet/train/trainer.h"

namespace scratchnet::cli {

// The augmentation as the command line gives it; only the flags given are applied.
struct AugmentFlags {
  AugmentOptions options;  // --rotate, --shift, --shear, --crop-padding, --erase
  std::vector<float> scale, elastic, erase_area;
  bool preset = false, none = false;  // --augment, --no-augment
};
// The "Augmentation" group: --augment (kDigitAugment), --no-augment, --rotate, --shift, --scale,
// --shear, --elastic, --crop-padding, --erase, --erase-area.
void add_augment_flags(CLI::App& cmd, AugmentFlags& flags);
// --no-augment clears `a`, --augment replaces it by the preset, then each flag given sets its
// fields; then the options are checked.
void apply_augment_flags(AugmentOptions& a, const AugmentFlags& flags, const CLI::App& cmd);

// The recipe as the command line gives it; only the flags given are applied.
struct RecipeFlags {
  Recipe recipe;
  std::string init = "pytorch";
  std::vector<float> normalize;
  bool scale_only = false;
  AugmentFlags augment;
};
// --epochs, --batch-size, --optimizer, --lr, --momentum, --nesterov, --weight-decay,
// --label-smoothing, --seed, --init, --l1, --validation, --early-stop, --early-stop-monitor,
// --min-delta, the schedule flags, the augmentation flags and, with `preprocessing`,
// --normalize and --scale-only.
void add_recipe_flags(CLI::App& cmd, RecipeFlags& flags, bool preprocessing);
// --model (a preset, spec or model file; default basic) and --dataset (default mnist).
void add_model_flags(CLI::App& cmd, std::string& model, std::string& dataset);
// --limit-train N, --limit-test N and --per-class N (0: not given).
void add_limit_flags(CLI::App& cmd, int64_t& limit_train, int64_t& limit_test, int64_t& per_class);
// The names of those flags (for the commands that refuse them).
std::vector<std::string> recipe_flag_names();
// Sets the fields of `r` whose flags were given, except the flags in `skip` (which a command
// reads its own way), then checks the recipe.
void apply_recipe_flags(Recipe& r, const RecipeFlags& flags, const CLI::App& cmd,
                        const std::vector<std::string>& skip = {});
// One line: "adam lr 0.001, batch 64, 5 epochs, seed 1, pixels /255" (with the schedule,
// fine-tuning, regularisation and augmentation when the recipe has them).
std::string describe_recipe(const Recipe& r);

// What a run directory remembers besides the checkpoint (run.json): where its data came from.
struct RunSettings {
  std::string model, dataset, data_dir;
  int64_t limit_train = 0, limit_test = 0;
  int64_t per_class = 0;  // 0: every training image
};
std::string run_settings_json(const RunSettings& r);
RunSettings read_run_settings(const std::string& path);
// The run's data: the set, cut to its per-class and first-N limits.
DatasetSplits load_limited(const RunSettings& run);

// Trains to the recipe's last epoch with a progress bar, writing after every epoch
// OUT/metrics.jsonl, OUT/checkpoint.safetensors, OUT/model.safetensors and OUT/report.html
// (and OUT/run.json first, unless resuming), and OUT/best.safetensors whenever the trainer's best
// epoch (Trainer::best()) is the one just finished; then prints the test accuracy, and the best
// epoch and whether early stopping ended the run.
void run_training(Trainer& trainer, Sequential& model, const DatasetSplits& data,
                  const RunSettings& run, ModelInfo info, const std::string& out_dir, bool resuming,
                  bool quiet);

}  // namespace scratchnet::cli
