// scratchnet finetune — train a trained model further on new data: a new head when the classes
// change, frozen layers, a backbone lr, gradual unfreezing; accuracy before and after.
#include "scratchnet/train/finetune.h"

#include <fmt/format.h>

#include <filesystem>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/parallel.h"
#include "scratchnet/train/evaluate.h"
#include "training.h"

namespace scratchnet::cli {

namespace fs = std::filesystem;

namespace {

struct FinetuneFlags {
  CommonFlags common;
  std::string model, dataset, out;
  std::string head = "auto";
  int64_t classes = -1;  // -1: the data set's
  RecipeFlags recipe;
  FinetuneOptions finetune;
  int64_t limit_train = 0, limit_test = 0, per_class = 0;
  bool force = false, quiet = false;
};

// runs/<data set>-from-<model>: "runs/fashion-mnist-from-bn-s1" for runs/bn-s1/model.safetensors.
std::string default_out(const std::string& model, const std::string& dataset) {
  fs::path m = fs::path(model).lexically_normal();
  if (m.filename().empty()) m = m.parent_path();
  std::string name = m.stem().string();
  if (name == "model" && m.has_parent_path()) name = m.parent_path().filename().string();
  fs::path d = fs::path(dataset).lexically_normal();
  if (d.filename().empty()) d = d.parent_path();
  return (fs::path("runs") / (d.filename().string() + "-from-" + name)).string();
}

std::string layer_list(const std::vector<size_t>& layers) {
  return layers.empty() ? "none" : fmt::format("{}", fmt::join(layers, ","));
}

void run_finetune(FinetuneFlags& f, const CLI::App& cmd) {
  apply_threads(f.common);
  ModelSource src = open_model(f.model);
  SN_CHECK(src.has_weights,
           "finetune starts from a trained model (a model file or run directory), not '{}': use "
           "scratchnet train --model {} to train it from scratch",
           f.model, f.model);
  Sequential& model = src.loaded.model;
  const ModelInfo& old = src.loaded.info;

  // The model's recipe, with its preprocessing: the backbone learnt on pixels made that way.
  Recipe recipe;
  if (!old.recipe.empty()) recipe = recipe_from_json(old.recipe, src.file + " (recipe)");
  recipe.preprocess = old.preprocess;
  recipe.validation = 0;  // the model's validation set and early stopping were for its own data
  recipe.early_stop = {};
  apply_recipe_flags(recipe, f.recipe, cmd);
  SN_CHECK(f.finetune.unfreeze_every == 0 || !f.finetune.freeze.empty(),
           "--unfreeze-every needs --freeze: there is nothing to unfreeze");
  recipe.finetune = f.finetune;
  check_recipe(recipe);

  const RunSettings run{src.file,      f.dataset,    f.common.data_dir,
                        f.limit_train, f.limit_test, f.per_class};
  const std::string out_dir = f.out.empty() ? default_out(f.model, f.dataset) : f.out;
  for (const char* name : {"checkpoint.safetensors", "model.safetensors"})
    SN_CHECK(f.force || !fs::exists(fs::path(out_dir) / name),
             "{} already holds a run ({}): use scratchnet train --resume {} to continue it, "
             "--force to replace it, or another --out",
             out_dir, name, out_dir);
  DatasetSplits data = load_limited(run);
  SN_CHECK(data.train.sample_shape() == model.input_shape(),
           "{}: images of shape {} do not fit {}, built for {}: fine-tuning needs images of the "
           "model's shape",
           data.train.source, shape_str(data.train.sample_shape()), src.file,
           shape_str(model.input_shape()));

  // The head: a new one when the classes change (in number or in name), or as asked.
  const int64_t classes = f.classes < 0 ? data.train.num_classes() : f.classes;
  SN_CHECK(classes >= data.train.num_classes(),
           "--classes {}: {} has {} classes, so the head needs at least {} outputs", classes,
           run.dataset, data.train.num_classes(), data.train.num_classes());
  const int64_t model_classes = shape_numel(model.output_shape(model.size() - 1));
  const bool same_classes = classes == model_classes &&
                            (old.class_names.empty() || old.class_names == data.train.class_names);
  const bool new_head = f.head == "new" || (f.head == "auto" && !same_classes);
  SN_CHECK(new_head || classes == model_classes,
           "--head keep: the model predicts {} classes, but {} needs {}: use --head new",
           model_classes, run.dataset, classes);
  const size_t head = head_index(model);
  if (new_head) replace_head(model, classes, recipe.init, recipe.seed);
  const std::vector<size_t> frozen = select_layers(model, recipe.finetune.freeze);

  fmt::print("fine-tuning {} on {}: {} head ({} classes, layer {}), frozen layers {}\n", src.file,
             run.dataset, new_head ? "a new" : "the model's", classes, head, layer_list(frozen));
  const EvalResult before = evaluate(model, data.test, recipe.preprocess);
  fmt::print("before fine-tuning: test accuracy {} on {} images{}\n", percent(before.accuracy),
             data.test.size(), new_head ? " (the new head is untrained)" : "");

  Trainer trainer(model, data.train, &data.test, recipe);
  ModelInfo info{.preprocess = recipe.preprocess,
                 .class_names = data.train.class_names,
                 .recipe = recipe_to_json(recipe),
                 .origin = fmt::format("{}, fine-tuned on {}: {} head, frozen layers {}; test "
                                       "accuracy before fine-tuning {}",
                                       src.file, run.dataset, new_head ? "new" : "same",
                                       layer_list(frozen), percent(before.accuracy)),
                 .dataset = run.dataset};
  if (static_cast<int64_t>(info.class_names.size()) != classes) info.class_names.clear();
  run_training(trainer, model, data, run, std::move(info), out_dir, false, f.quiet);
  fmt::print("test accuracy {} before fine-tuning, {} after\n", percent(before.accuracy),
             percent(trainer.history().back().test_accuracy));
}

}  // namespace

void add_finetune(CLI::App& app) {
  auto flags = std::make_shared<FinetuneFlags>();
  FinetuneFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand(
      "finetune",
      "Fine-tune a trained model on new data (transfer learning).\n"
      "The head (the last Linear layer) is replaced by a new one when the data set's classes "
      "differ from the model's; the other layers keep their weights. The model's recipe and "
      "preprocessing are the defaults; the test accuracy is shown before and after. Writes a "
      "run directory as train does (continue it with scratchnet train --resume DIR); the model "
      "file records the model it came from.");
  add_model_file_arg(*cmd, f.model);
  cmd->add_option("--dataset", f.dataset,
                  "The new data: a data set name (mnist, fashion-mnist), a directory of IDX "
                  "files or a directory of class folders of images")
      ->required();
  add_data_dir_flag(*cmd, f.common);
  cmd->add_option("--out", f.out, "Run directory (default: runs/<data set>-from-<model>)");
  cmd->add_flag("--force", f.force, "Replace a run already in the output directory");
  const char* group = "Fine-tuning";
  cmd->add_option("--head", f.head,
                  "auto: a new head when the classes differ in number or name; new: always; "
                  "keep: never")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "new", "keep"}))
      ->group(group);
  cmd->add_option("--classes", f.classes,
                  "Outputs of the new head (default: the data set's classes)")
      ->check(kPositive)
      ->group(group);
  cmd->add_option("--freeze", f.finetune.freeze,
                  "Layers to keep fixed: indices (3), ranges (0-5), layer kinds (Conv2d, "
                  "BatchNorm2d), features (every layer before Flatten) or backbone (every layer "
                  "before the head); frozen BatchNorms keep their running statistics")
      ->delimiter(',')
      ->type_name("SEL,...")
      ->group(group);
  cmd->add_option("--backbone-lr", f.finetune.backbone_lr,
                  "Learning rate of the layers before the head (default: --lr for every layer); "
                  "a schedule scales both")
      ->check(kPositive)
      ->group(group);
  cmd->add_option("--unfreeze-every", f.finetune.unfreeze_every,
                  "Gradual unfreezing: every N epochs the frozen block (a Conv2d or Linear with "
                  "its BatchNorm, activation and pooling) nearest the head is "
                  "unfrozen (needs --freeze)")
      ->check(kPositive)
      ->group(group);
  add_recipe_flags(*cmd, f.recipe, false);
  add_limit_flags(*cmd, f.limit_train, f.limit_test, f.per_class);
  add_threads_flag(*cmd, f.common);
  cmd->add_flag("--quiet", f.quiet, "No progress bar");
  cmd->callback([flags, cmd] { run_finetune(*flags, *cmd); });
}

}  // namespace scratchnet::cli
