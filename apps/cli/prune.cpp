// scratchnet prune — magnitude pruning of a model file to one or more sparsities, optionally
// fine-tuned with the pruned weights held at 0, and accuracy against sparsity
// (include/scratchnet/train/prune.h).
#include "scratchnet/train/prune.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int64_t kEvalBatch = 1000;

struct PruneFlags {
  CommonFlags common;
  std::string model;
  std::string sparsities = "0.5,0.75,0.9,0.95";
  std::string scope = "layer";
  int64_t finetune_epochs = 0;
  float lr = 0;  // 0: the recipe's
  std::string dataset;
  std::string out;
  int64_t limit_train = 0, limit_test = 0;
  bool json = false, quiet = false;
};

// One sparsity's outcome.
struct Row {
  double sparsity = 0;
  SparsityReport zeros;
  EvalResult pruned, finetuned;  // finetuned.count 0 without fine-tuning
  double seconds = 0;
  std::string file;  // empty without --out

  const EvalResult& final_result() const { return finetuned.count ? finetuned : pruned; }
};

// "model-s90.safetensors", "model-s97.5.safetensors".
std::string file_name(double sparsity) {
  return fmt::format("model-s{:g}.safetensors", 100 * sparsity);
}

std::string percent1(double fraction) { return fmt::format("{:.1f}%", 100 * fraction); }

// "0.5,0.9" -> {0.5, 0.9}: each a number in [0, 1), none twice.
std::vector<double> parse_sparsities(const std::string& text) {
  std::vector<double> list;
  SN_CHECK(!text.empty(), "--sparsity: give at least one sparsity, e.g. --sparsity 0.5,0.9");
  size_t start = 0;
  while (true) {
    const size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    double v = NAN;
    size_t used = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    SN_CHECK(!item.empty() && used == item.size(), "--sparsity: '{}' is not a number (in '{}')",
             item, text);
    SN_CHECK(v >= 0 && v < 1,
             "--sparsity: each must be in [0, 1) (the fraction of weights set to 0), got {}", item);
    SN_CHECK(std::find(list.begin(), list.end(), v) == list.end(), "--sparsity: {} is listed twice",
             item);
    list.push_back(v);
    if (end == text.size()) return list;
    start = end + 1;
  }
}

// Creates --out if needed and checks it can be written, before any long work.
void prepare_out_dir(const std::string& dir) {
  SN_CHECK(!fs::exists(dir) || fs::is_directory(dir), "--out {}: not a directory", dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  SN_CHECK(!ec, "--out {}: cannot create the directory: {}", dir, ec.message());
  SN_CHECK(access(dir.c_str(), W_OK) == 0, "--out {}: the directory is not writable", dir);
}

// The recipe fine-tuning uses: the model file's, for `epochs`, at a constant lr, on the whole
// training set (no validation set, no early stopping).
Recipe finetune_recipe(const LoadedModel& m, const PruneFlags& f) {
  SN_CHECK(!m.info.recipe.empty(),
           "{} records no training recipe: it cannot be fine-tuned (use --finetune-epochs 0)",
           f.model);
  Recipe r = recipe_from_json(m.info.recipe, f.model + " (recipe)");
  r.epochs = f.finetune_epochs;
  if (f.lr > 0) r.lr = f.lr;
  r.schedule = ScheduleOptions{};
  r.validation = 0;
  r.early_stop = {};
  r.preprocess = m.info.preprocess;
  check_recipe(r);
  return r;
}

std::string metrics_json(const Row& row, const PruneFlags& f, const EvalResult& before) {
  const EvalResult& last = row.final_result();
  return json{{"sparsity", row.sparsity},
              {"scope", f.scope},
              {"achieved_sparsity", row.zeros.fraction()},
              {"pruned_weights", row.zeros.zeros},
              {"prunable_weights", row.zeros.count},
              {"finetune_epochs", f.finetune_epochs},
              {"test_accuracy_before_pruning", before.accuracy},
              {"test_accuracy_after_pruning", row.pruned.accuracy},
              {"test_accuracy", last.accuracy},
              {"test_loss", last.loss}}
      .dump();
}

std::string report_json(const std::vector<Row>& rows, const PruneFlags& f, const std::string& data,
                        const EvalResult& before, const Recipe* recipe, double seconds) {
  json results = json::array();
  for (const Row& row : rows) {
    json layers = json::array();
    for (const TensorSparsity& s : row.zeros.layers)
      layers.push_back(
          {{"name", s.name}, {"kind", s.kind}, {"zeros", s.zeros}, {"count", s.count}});
    const bool tuned = row.finetuned.count > 0;
    results.push_back({{"sparsity", row.sparsity},
                       {"achieved_sparsity", row.zeros.fraction()},
                       {"accuracy_pruned", row.pruned.accuracy},
                       {"loss_pruned", row.pruned.loss},
                       {"accuracy_finetuned", tuned ? json(row.finetuned.accuracy) : json(nullptr)},
                       {"loss_finetuned", tuned ? json(row.finetuned.loss) : json(nullptr)},
                       {"change", row.final_result().accuracy - before.accuracy},
                       {"seconds", row.seconds},
                       {"file", row.file.empty() ? json(nullptr) : json(row.file)},
                       {"layers", layers}});
  }
  return json{{"model", f.model},
              {"dataset", data},
              {"test_images", before.count},
              {"scope", f.scope},
              {"finetune_epochs", f.finetune_epochs},
              {"lr", recipe ? json(Optimizer::widen(recipe->lr)) : json(nullptr)},
              {"accuracy_before", before.accuracy},
              {"loss_before", before.loss},
              {"seconds", seconds},
              {"results", results}}
      .dump();
}

void print_row(const Row& row, const EvalResult& before, bool tuned) {
  const double change = row.final_result().accuracy - before.accuracy;
  fmt::print("{:>8}  {:>8}  {:>8}  {:>8}", percent1(row.sparsity), percent(row.zeros.fraction()),
             percent(before.accuracy), percent(row.pruned.accuracy));
  if (tuned) fmt::print("  {:>10}", percent(row.finetuned.accuracy));
  fmt::print("  {:>+7.2f}  {:>7}  {}\n", 100 * change, duration(row.seconds),
             row.file.empty() ? "-" : row.file);
  std::fflush(stdout);
}

// Zeros of each prunable weight (rows) at each sparsity (columns).
void print_layers(const std::vector<Row>& rows) {
  fmt::print("\nzeros per layer:\n  {:<10} {:<7} {:>9}", "weight", "layer", "count");
  for (const Row& row : rows) fmt::print(" {:>7}", percent1(row.sparsity));
  fmt::print("\n");
  for (size_t l = 0; l < rows.front().zeros.layers.size(); ++l) {
    const TensorSparsity& s = rows.front().zeros.layers[l];
    fmt::print("  {:<10} {:<7} {:>9}", s.name, s.kind, s.count);
    for (const Row& row : rows) fmt::print(" {:>7}", percent1(row.zeros.layers[l].fraction()));
    fmt::print("\n");
  }
}

void run_prune(const PruneFlags& f, const CLI::App& cmd) {
  const auto start = std::chrono::steady_clock::now();
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  apply_threads(f.common);
  const std::vector<double> sparsities = parse_sparsities(f.sparsities);
  const bool tuning = f.finetune_epochs > 0;
  for (const char* flag : {"--lr", "--limit-train"})
    SN_CHECK(tuning || cmd.count(flag) == 0, "{} applies to fine-tuning: give --finetune-epochs N",
             flag);
  ModelSource src = open_model(f.model);
  SN_CHECK(src.has_weights, "'{}' has no trained weights: prune needs a model file", f.model);
  LoadedModel& m = src.loaded;
  Recipe recipe;
  if (tuning) recipe = finetune_recipe(m, f);

  const std::string dataset = f.dataset.empty() ? m.info.dataset : f.dataset;
  SN_CHECK(!dataset.empty(), "{} does not record its data set: give --dataset", f.model);
  DatasetSplits data = load_dataset(dataset, f.common.data_dir);
  if (!f.out.empty()) prepare_out_dir(f.out);
  if (f.limit_train > 0)
    data.train = take_first(data.train, std::min(f.limit_train, data.train.size()));
  if (f.limit_test > 0) data.test = take_first(data.test, std::min(f.limit_test, data.test.size()));

  const SafeTensors original = model_to_safetensors(m.model, m.info);
  const EvalResult before = evaluate(m.model, data.test, m.info.preprocess, kEvalBatch);
  const SparsityReport dense = sparsity_report(m.model);
  const PruneScope scope = f.scope == "global" ? PruneScope::kGlobal : PruneScope::kLayer;
  if (!f.json) {
    fmt::print("{} on {}: test accuracy {} ({}/{}) before pruning\n", f.model, dataset,
               percent(before.accuracy), before.correct(), before.count);
    fmt::print("pruning the {} Conv2d and Linear weights ({} of {} parameters) {}", dense.count,
               percent(static_cast<double>(dense.count) / m.model.num_params()),
               m.model.num_params(),
               scope == PruneScope::kGlobal ? "with one global threshold" : "layer by layer");
    if (tuning)
      fmt::print(
          "; fine-tuning {} epoch{} on {} training images ({} lr {}, masks re-applied "
          "after every step)",
          f.finetune_epochs, f.finetune_epochs == 1 ? "" : "s", data.train.size(), recipe.optimizer,
          recipe.lr);
    fmt::print("; {} threads\n\n", num_threads());
    fmt::print("{:>8}  {:>8}  {:>8}  {:>8}", "target", "zeros", "before", "pruned");
    if (tuning) fmt::print("  {:>10}", "fine-tuned");
    fmt::print("  {:>7}  {:>7}  {}\n", "change", "time", "file");
    std::fflush(stdout);
  }

  std::vector<Row> rows;
  Progress progress(f.quiet);
  for (double sparsity : sparsities) {
    const auto row_start = std::chrono::steady_clock::now();
    Row row{.sparsity = sparsity};
    LoadedModel copy = model_from_safetensors(original, f.model);
    std::vector<PruneMask> masks =
        prune_by_magnitude(copy.model, {.sparsity = sparsity, .scope = scope});
    row.zeros = sparsity_report(copy.model);
    row.pruned = evaluate(copy.model, data.test, m.info.preprocess, kEvalBatch);
    if (tuning) {
      if (!f.quiet)
        fmt::print(stderr, "sparsity {}: fine-tuning ({} after pruning)\n", percent1(sparsity),
                   percent(row.pruned.accuracy));
      Trainer trainer(copy.model, data.train, &data.test, recipe);
      trainer.fit({.on_step = [&](const StepInfo& s) {
        apply_masks(masks);
        progress.step(s);
      }});
      row.finetuned = trainer.last_test();
      copy.info.recipe = recipe_to_json(recipe);
    }
    row.seconds = seconds_since(row_start);
    if (!f.out.empty()) {
      row.file = (fs::path(f.out) / file_name(sparsity)).string();
      copy.info.origin = f.model;
      copy.info.dataset = dataset;
      copy.info.metrics = metrics_json(row, f, before);
      save_model(row.file, copy.model, copy.info);
    }
    if (!f.json) print_row(row, before, tuning);
    rows.push_back(std::move(row));
  }
  const double seconds = seconds_since(start);
  if (f.json) {
    fmt::print("{}\n", report_json(rows, f, dataset, before, tuning ? &recipe : nullptr, seconds));
    return;
  }
  print_layers(rows);
  fmt::print("\n{} sparsit{} in {}{}\n", rows.size(), rows.size() == 1 ? "y" : "ies",
             duration(seconds), f.out.empty() ? "; no model files written (give --out DIR)" : "");
}

}  // namespace

void add_prune(CLI::App& app) {
  auto flags = std::make_shared<PruneFlags>();
  PruneFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand(
      "prune",
      "Magnitude-prune a model file: for each sparsity, set that fraction of the Conv2d and "
      "Linear weights with the smallest |w| to 0 (biases and BatchNorm are kept), evaluate on the "
      "test set, optionally fine-tune with the pruned weights held at 0 and evaluate again.\n"
      "Prints accuracy against sparsity; with --out writes each pruned model as "
      "DIR/model-s<percent>.safetensors, a normal model file (eval, predict, serve, export).");
  add_model_file_arg(*cmd, f.model);
  cmd->add_option("--sparsity", f.sparsities,
                  "Fractions of the weights to prune, each in [0, 1), e.g. 0.5,0.9")
      ->type_name("S,S,...")
      ->capture_default_str();
  cmd->add_option("--scope", f.scope,
                  "layer: prune each layer's weights to the sparsity; global: one magnitude "
                  "threshold over all of them (layers end up unequally sparse)")
      ->check(CLI::IsMember({"layer", "global"}))
      ->capture_default_str();
  cmd->add_option("--finetune-epochs", f.finetune_epochs,
                  "Epochs of training after pruning, with the model file's recipe at a constant "
                  "lr and the pruned weights re-zeroed after every step (default 0: none)")
      ->check(kNonNegative);
  cmd->add_option("--lr", f.lr, "Fine-tuning learning rate (default: the recipe's)")
      ->check(kPositive);
  cmd->add_option("--dataset", f.dataset,
                  "Data set name or directory (default: the one the model was trained on)");
  add_data_dir_flag(*cmd, f.common);
  cmd->add_option("--out", f.out,
                  "Directory for the pruned model files (created if needed; default: none "
                  "written)");
  cmd->add_option("--limit-train", f.limit_train, "Fine-tune on the first N training images")
      ->check(kPositive);
  cmd->add_option("--limit-test", f.limit_test, "Evaluate on the first N test images")
      ->check(kPositive);
  cmd->add_flag("--json", f.json, "Print one JSON object instead of the table");
  cmd->add_flag("--quiet", f.quiet, "No fine-tuning progress");
  add_threads_flag(*cmd, f.common);
  cmd->callback([flags, cmd] { run_prune(*flags, *cmd); });
}

}  // namespace scratchnet::cli
