// scratchnet train — train a preset, a spec file or a model file on a data set, or resume.

#include <filesystem>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/presets.h"
#include "training.h"

namespace scratchnet::cli {

namespace fs = std::filesystem;

namespace {

struct TrainFlags {
  CommonFlags common;
  std::string model = "basic";
  std::string dataset = "mnist";
  std::string out;
  std::string resume;
  RecipeFlags recipe;
  int64_t limit_train = 0, limit_test = 0, per_class = 0;
  bool force = false, quiet = false;
};

void run_train(TrainFlags& f, const CLI::App& cmd) {
  apply_threads(f.common);
  const bool resuming = !f.resume.empty();
  RunSettings run;
  LoadedModel loaded;
  Recipe recipe;
  std::string out_dir;
  bool has_weights = false;

  if (resuming) {
    std::vector<std::string> fixed = recipe_flag_names();
    for (const char* flag : {"--model", "--dataset", "--limit-train", "--limit-test", "--out",
                             "--force", "--per-class"})
      fixed.push_back(flag);
    for (const std::string& flag : fixed)
      SN_CHECK(cmd.count(flag) == 0,
               "{} cannot be given with --resume: a resumed run keeps its settings (only "
               "--epochs, --threads, --data-dir and --quiet may change)",
               flag);
    out_dir = f.resume;
    std::string ckpt = (fs::path(out_dir) / "checkpoint.safetensors").string();
    SN_CHECK(fs::exists(ckpt), "{} has no checkpoint.safetensors: nothing to resume", out_dir);
    run = read_run_settings((fs::path(out_dir) / "run.json").string());
    if (cmd.count("--data-dir")) run.data_dir = f.common.data_dir;
    loaded = load_model(ckpt);
    recipe = recipe_from_json(loaded.info.recipe, ckpt + " (recipe)");
    const std::string& kind = recipe.schedule.kind;
    SN_CHECK(!cmd.count("--epochs") || f.recipe.recipe.epochs == recipe.epochs ||
                 (kind != "cosine" && kind != "onecycle"),
             "--epochs cannot change when resuming a run with a {} schedule: its length was set "
             "to {} epoch{}",
             kind, recipe.epochs, recipe.epochs == 1 ? "" : "s");
    if (cmd.count("--epochs")) recipe.epochs = f.recipe.recipe.epochs;
  } else {
    ModelSource src = open_model(f.model);
    loaded = std::move(src.loaded);
    has_weights = src.has_weights;
    if (src.is_preset)
      recipe = preset_recipe(f.model);
    else if (!loaded.info.recipe.empty())
      recipe = recipe_from_json(loaded.info.recipe, f.model + " (recipe)");
    apply_recipe_flags(recipe, f.recipe, cmd);
    run = {f.model, f.dataset, f.common.data_dir, f.limit_train, f.limit_test, f.per_class};
    out_dir = f.out.empty() ? (fs::path("runs") / fs::path(f.model).stem()).string() : f.out;
    for (const char* name : {"checkpoint.safetensors", "model.safetensors"})
      SN_CHECK(f.force || !fs::exists(fs::path(out_dir) / name),
               "{} already holds a run ({}): use --resume {} to continue it, --force to "
               "replace it, or another --out",
               out_dir, name, out_dir);
  }

  DatasetSplits data = load_limited(run);
  Sequential& model = loaded.model;
  int64_t classes = shape_numel(model.output_shape(model.size() - 1));
  SN_CHECK(data.train.num_classes() <= classes,
           "{} has {} classes but the model predicts {}: give a model with {} outputs", run.dataset,
           data.train.num_classes(), classes, data.train.num_classes());
  if (!resuming && !has_weights) model.init(recipe.init, recipe.seed);

  Trainer trainer(model, data.train, &data.test, recipe);
  if (resuming) {
    trainer.load_checkpoint((fs::path(out_dir) / "checkpoint.safetensors").string());
    SN_CHECK(!trainer.stopped_early(),
             "the run in {} stopped early after epoch {} ({} did not improve for {} epochs): "
             "its best model is {}/best.safetensors",
             out_dir, trainer.epochs_done(), recipe.early_stop.monitor, recipe.early_stop.patience,
             out_dir);
    SN_CHECK(trainer.epochs_done() < recipe.epochs,
             "the run in {} has finished its {} epochs: give --epochs N with N > {} to train on",
             out_dir, recipe.epochs, recipe.epochs);
  }
  ModelInfo info{.preprocess = recipe.preprocess,
                 .class_names = data.train.class_names,
                 .recipe = recipe_to_json(recipe),
                 .origin = resuming      ? loaded.info.origin
                           : has_weights ? f.model
                                         : std::string(),
                 .dataset = run.dataset};
  if (static_cast<int64_t>(info.class_names.size()) != classes) info.class_names.clear();
  run_training(trainer, model, data, run, std::move(info), out_dir, resuming, f.quiet);
}

}  // namespace

void add_train(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  TrainFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train a model and evaluate it on the test set after every epoch.\n"
      "Writes DIR/model.safetensors, DIR/checkpoint.safetensors (to resume), DIR/metrics.jsonl, "
      "DIR/run.json and DIR/report.html (curves, confusion matrix, mistakes, filters; rewritten "
      "after every epoch); with --validation or --early-stop also DIR/best.safetensors, the "
      "model of the best epoch.");
  add_model_flags(*cmd, f.model, f.dataset);
  add_data_dir_flag(*cmd, f.common);
  cmd->add_option("--out", f.out, "Run directory (default: runs/<model>)");
  cmd->add_option("--resume", f.resume, "Continue the run in this directory from its checkpoint");
  cmd->add_flag("--force", f.force, "Replace a run already in the output directory");
  add_recipe_flags(*cmd, f.recipe, true);
  add_limit_flags(*cmd, f.limit_train, f.limit_test, f.per_class);
  add_threads_flag(*cmd, f.common);
  cmd->add_flag("--quiet", f.quiet, "No progress bar");
  cmd->callback([flags, cmd] { run_train(*flags, *cmd); });
}

}  // namespace scratchnet::cli
