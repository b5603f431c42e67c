// scratchnet info — the summary of a preset, a model spec or a model file.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common.h"
#include "scratchnet/presets.h"
#include "scratchnet/train/recipe.h"

namespace scratchnet::cli {

namespace {

void run_info(const std::string& name) {
  ModelSource src = open_model(name);
  LoadedModel& m = src.loaded;
  fmt::print("{}", m.model.summary());
  if (src.is_preset) {
    fmt::print("recipe: {}\n", recipe_to_json(preset_recipe(name)));
    return;
  }
  if (!src.has_weights) return;
  const ModelInfo& info = m.info;
  if (!info.dataset.empty()) fmt::print("trained on: {}\n", info.dataset);
  if (!info.origin.empty()) fmt::print("started from: {}\n", info.origin);
  if (!info.class_names.empty()) fmt::print("classes: {}\n", fmt::join(info.class_names, ", "));
  fmt::print("preprocessing: {}\n", preprocess_to_json(info.preprocess));
  if (!info.recipe.empty()) fmt::print("recipe: {}\n", info.recipe);
  if (!info.metrics.empty()) fmt::print("metrics: {}\n", info.metrics);
}

}  // namespace

void add_info(CLI::App& app) {
  auto name = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "info",
      "Show a model's layers, output shapes, parameters and FLOPs, and for a model file its "
      "recipe and metrics.");
  cmd->add_option("model", *name, "A preset (basic, bn), a model spec (.json) or a model file")
      ->required();
  cmd->callback([name] { run_info(*name); });
}

}  // namespace scratchnet::cli
