// training.cpp — the pieces train and finetune share (training.h).
#include "training.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <tuple>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/io/atomic_file.h"
#include "scratchnet/parallel.h"
#include "scratchnet/train/report.h"

namespace scratchnet::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int64_t kReportMistakes = 24;  // test images the report shows

// The schedule flags and the kinds of --schedule each applies to.
const std::map<std::string, std::vector<std::string>>& schedule_flags() {
  static const std::map<std::string, std::vector<std::string>> flags = {
      {"--schedule-unit", {"step", "multistep", "exponential", "cosine"}},
      {"--step-size", {"step"}},
      {"--milestones", {"multistep"}},
      {"--gamma", {"step", "multistep", "exponential"}},
      {"--warmup", {"cosine"}},
      {"--warmup-start-factor", {"cosine"}},
      {"--min-lr", {"cosine", "plateau"}},
      {"--max-lr", {"onecycle"}},
      {"--pct-start", {"onecycle"}},
      {"--anneal", {"onecycle"}},
      {"--div-factor", {"onecycle"}},
      {"--final-div-factor", {"onecycle"}},
      {"--three-phase", {"onecycle"}},
      {"--monitor", {"plateau"}},
      {"--mode", {"plateau"}},
      {"--factor", {"plateau"}},
      {"--patience", {"plateau"}},
      {"--threshold", {"plateau"}},
      {"--threshold-mode", {"plateau"}},
      {"--cooldown", {"plateau"}},
      {"--plateau-eps", {"plateau"}}};
  return flags;
}

// --schedule and its flags replace the recipe's schedule; without --schedule it is kept.
void apply_schedule_flags(Recipe& r, const RecipeFlags& f, const CLI::App& cmd) {
  auto given = [&](const std::string& name) { return cmd.count(name) > 0; };
  const ScheduleOptions& flags = f.recipe.schedule;
  const std::string& kind = flags.kind;
  for (const auto& [flag, kinds] : schedule_flags()) {
    if (!given(flag)) continue;
    std::string list = fmt::format("{}", fmt::join(kinds, ", "));
    SN_CHECK(given("--schedule"), "{} needs --schedule ({})", flag, list);
    SN_CHECK(std::find(kinds.begin(), kinds.end(), kind) != kinds.end(),
             "{} does not apply to --schedule {} (only to {})", flag, kind, list);
  }
  if (!given("--schedule")) return;
  SN_CHECK(kind != "step" || given("--step-size"), "--schedule step needs --step-size N");
  SN_CHECK(kind != "multistep" || given("--milestones"),
           "--schedule multistep needs --milestones A,B,...");
  SN_CHECK(kind != "exponential" || given("--gamma"), "--schedule exponential needs --gamma G");
  for (size_t i = 0; i < flags.milestones.size(); ++i) {
    SN_CHECK(flags.milestones[i] >= 1, "--milestones: each must be at least 1, got {}",
             fmt::join(flags.milestones, ","));
    SN_CHECK(i == 0 || flags.milestones[i] > flags.milestones[i - 1],
             "--milestones must be strictly increasing, got {}", fmt::join(flags.milestones, ","));
  }
  r.schedule = flags;
  if (kind == "onecycle" && !given("--max-lr")) r.schedule.max_lr = Optimizer::widen(r.lr);
}

void add_schedule_flags(CLI::App& cmd, ScheduleOptions& s) {
  const char* group = "Learning-rate schedule (as torch.optim.lr_scheduler)";
  auto option = [&](const char* name, auto& field, const char* help) {
    return cmd.add_option(name, field, help)->group(group);
  };
  option("--schedule", s.kind,
         "none (default), step (StepLR), multistep (MultiStepLR), exponential (ExponentialLR), "
         "cosine (linear warm-up + CosineAnnealingLR), onecycle (OneCycleLR, per batch) or "
         "plateau (ReduceLROnPlateau on the test loss, per epoch). Replaces the recipe's "
         "schedule; the flags below set its options")
      ->check(CLI::IsMember(
          {"none", "step", "multistep", "exponential", "cosine", "onecycle", "plateau"}));
  option("--schedule-unit", s.unit,
         "What the counts of step, multistep, exponential and cosine are: epoch (the default) "
         "or step (batches)")
      ->check(CLI::IsMember({"epoch", "step"}));
  option("--step-size", s.step_size, "step: multiply the lr by --gamma every N epochs (required)")
      ->check(kPositive);
  option("--milestones", s.milestones,
         "multistep: increasing epochs at which the lr is multiplied by --gamma, e.g. 3,6")
      ->delimiter(',')
      ->type_name("A,B,...");
  option("--gamma", s.gamma, "step, multistep, exponential: the lr's factor per decay")
      ->capture_default_str()
      ->check(kPositive);
  option("--warmup", s.warmup,
         "cosine: epochs (or steps) of linear warm-up before the cosine decay")
      ->capture_default_str()
      ->check(kNonNegative);
  option("--warmup-start-factor", s.warmup_start_factor,
         "cosine: the warm-up starts at this times the lr, in (0, 1]")
      ->capture_default_str();
  option("--min-lr", s.min_lr, "cosine: the lr the decay ends at; plateau: the lowest lr")
      ->capture_default_str()
      ->check(kNonNegative);
  option("--max-lr", s.max_lr, "onecycle: the peak lr (default: --lr or the recipe's)")
      ->check(kPositive);
  option("--pct-start", s.pct_start, "onecycle: share of the steps spent rising, in (0, 1)")
      ->capture_default_str();
  option("--anneal", s.anneal_strategy, "onecycle: cos or linear")
      ->capture_default_str()
      ->check(CLI::IsMember({"cos", "linear"}));
  option("--div-factor", s.div_factor, "onecycle: the start lr is max-lr / this")
      ->capture_default_str()
      ->check(kPositive);
  option("--final-div-factor", s.final_div_factor, "onecycle: the end lr is the start lr / this")
      ->capture_default_str()
      ->check(kPositive);
  cmd.add_flag("--three-phase", s.three_phase,
               "onecycle: come back down to the start lr, then anneal below it (the paper's "
               "three phases)")
      ->group(group);
  option("--monitor", s.monitor,
         "plateau: the metric watched: test_loss, test_accuracy, train_loss, train_accuracy, or "
         "with --validation val_loss or val_accuracy")
      ->capture_default_str()
      ->check(CLI::IsMember({"test_loss", "test_accuracy", "train_loss", "train_accuracy",
                             "val_loss", "val_accuracy"}));
  option("--mode", s.mode, "plateau: min (a loss) or max (an accuracy)")
      ->capture_default_str()
      ->check(CLI::IsMember({"min", "max"}));
  option("--factor", s.factor, "plateau: the lr's factor when it is cut, in (0, 1)")
      ->capture_default_str();
  option("--patience", s.patience,
         "plateau: epochs without improvement tolerated before the lr is cut")
      ->capture_default_str()
      ->check(kNonNegative);
  option("--threshold", s.threshold, "plateau: the smallest change that counts as improvement")
      ->capture_default_str()
      ->check(kNonNegative);
  option("--threshold-mode", s.threshold_mode,
         "plateau: rel (a fraction of the best) or abs (an amount)")
      ->capture_default_str()
      ->check(CLI::IsMember({"rel", "abs"}));
  option("--cooldown", s.cooldown, "plateau: epochs ignored after each cut")
      ->capture_default_str()
      ->check(kNonNegative);
  option("--plateau-eps", s.eps, "plateau: a cut smaller than this is skipped")
      ->capture_default_str()
      ->check(kNonNegative);
}

// Whether `cmd` has the flag `name` and it was given (flags a command lacks count as not given).
bool given(const CLI::App& cmd, const char* name) {
  const CLI::Option* option = cmd.get_option_no_throw(name);
  return option != nullptr && option->count() > 0;
}

constexpr const char* kAugmentFlagNames[] = {
    "--augment", "--no-augment", "--rotate",       "--shift", "--scale",
    "--shear",   "--elastic",    "--crop-padding", "--erase", "--erase-area"};

void add_regularisation_flags(CLI::App& cmd, Recipe& r) {
  const char* group = "Regularisation and early stopping";
  cmd.add_option("--l1", r.l1,
                 "L1 penalty: adds F * sum |w| over the Conv2d and Linear weights (not biases or "
                 "BatchNorm) to the loss")
      ->check(kNonNegative)
      ->group(group);
  cmd.add_option("--validation", r.validation,
                 "Hold out this fraction of the training set (per class, seeded by --seed) and "
                 "evaluate it after every epoch; the best epoch's model is kept as "
                 "DIR/best.safetensors")
      ->check(kFraction)
      ->group(group);
  cmd.add_option("--early-stop", r.early_stop.patience,
                 "Stop after N epochs in a row without improvement of --early-stop-monitor")
      ->type_name("N")
      ->check(kPositive)
      ->group(group);
  cmd.add_option("--early-stop-monitor", r.early_stop.monitor,
                 "The metric that picks the best epoch and stops early: val_loss (default), "
                 "val_accuracy, or test_loss / test_accuracy (the test set then chooses the model)")
      ->check(CLI::IsMember({"val_loss", "val_accuracy", "test_loss", "test_accuracy"}))
      ->group(group);
  cmd.add_option("--min-delta", r.early_stop.min_delta,
                 "The smallest change of the monitored metric that counts as an improvement")
      ->check(kNonNegative)
      ->group(group);
}

void apply_regularisation_flags(Recipe& r, const Recipe& flags,
                                const std::function<bool(const char*)>& given) {
  if (given("--l1")) r.l1 = flags.l1;
  if (given("--validation")) r.validation = flags.validation;
  if (given("--early-stop")) r.early_stop.patience = flags.early_stop.patience;
  if (given("--early-stop-monitor")) r.early_stop.monitor = flags.early_stop.monitor;
  if (given("--min-delta")) r.early_stop.min_delta = flags.early_stop.min_delta;
  SN_CHECK(!r.early_stop.active() || r.validation > 0 || r.early_stop.monitor.starts_with("test_"),
           "--early-stop needs a set to watch: give --validation F (a fraction of the training "
           "set), or --early-stop-monitor test_loss or test_accuracy to watch the test set");
  for (const char* flag : {"--early-stop-monitor", "--min-delta"})
    SN_CHECK(!given(flag) || r.early_stop.active() || r.validation > 0,
             "{} needs --early-stop N or --validation F", flag);
}

// With gradual unfreezing: which layers the epoch after `epoch` (1-based) unfreezes.
void announce_unfreezing(Sequential& model, const Recipe& r, int64_t epoch) {
  if (r.finetune.unfreeze_every == 0 || epoch >= r.epochs) return;
  std::vector<size_t> before = frozen_layers(model, r.finetune, epoch - 1),
                      after = frozen_layers(model, r.finetune, epoch);
  if (before.size() == after.size()) return;
  fmt::print(
      "epoch {} unfreezes layer{} {}\n", epoch + 1, before.size() - after.size() == 1 ? "" : "s",
      fmt::join(before.begin() + static_cast<std::ptrdiff_t>(after.size()), before.end(), ","));
}

}  // namespace

void add_augment_flags(CLI::App& cmd, AugmentFlags& f) {
  const char* group = "Augmentation (training images only; include/scratchnet/data/augment.h)";
  auto option = [&](const char* name, auto& field, const char* type, const char* help) {
    return cmd.add_option(name, field, help)->type_name(type)->group(group);
  };
  auto pair = [&](const char* name, std::vector<float>& field, const char* type, const char* help) {
    option(name, field, type, help)->expected(2)->delimiter(',');
  };
  AugmentOptions& a = f.options;
  cmd.add_flag("--augment", f.preset,
               "The preset for digits: --rotate 10 --shift 0.1 --scale 0.9,1.1 (the flags below "
               "change it)")
      ->group(group);
  cmd.add_flag("--no-augment", f.none, "No augmentation, even if the recipe has some")
      ->group(group);
  option("--rotate", a.rotate, "DEG",
         "Rotate by a random angle in [-DEG, DEG] degrees, in [0, 180]");
  option("--shift", a.shift, "FRAC",
         "Shift by whole pixels up to FRAC of the width and height, in [0, 1)");
  pair("--scale", f.scale, "LO,HI", "Scale by a random factor in [LO, HI], e.g. 0.9,1.1");
  option("--shear", a.shear, "DEG", "Shear along x by a random angle in [-DEG, DEG], in [0, 60]");
  pair("--elastic", f.elastic, "ALPHA,SIGMA",
       "Elastic distortion (Simard et al. 2003): displacements of ALPHA pixels smoothed by a "
       "Gaussian of SIGMA pixels, e.g. 34,4");
  option("--crop-padding", a.crop_padding, "PX",
         "Pad PX zero pixels on every side, then crop back at a random offset");
  option("--erase", a.erase, "PROB",
         "Random erasing: with probability PROB set a random rectangle to 0");
  pair("--erase-area", f.erase_area, "LO,HI",
       "Random erasing: the rectangle's fraction of the image, in [LO, HI] (default 0.02,0.33)");
}

void apply_augment_flags(AugmentOptions& a, const AugmentFlags& f, const CLI::App& cmd) {
  const AugmentOptions& o = f.options;
  if (given(cmd, "--no-augment")) {
    for (const char* name : kAugmentFlagNames)
      SN_CHECK(std::string_view(name) == "--no-augment" || !given(cmd, name),
               "--no-augment cannot be given with {}", name);
    a = {};
  }
  if (given(cmd, "--augment")) a = kDigitAugment;
  if (given(cmd, "--rotate")) a.rotate = o.rotate;
  if (given(cmd, "--shift")) a.shift = o.shift;
  if (given(cmd, "--scale")) std::tie(a.scale_min, a.scale_max) = std::pair(f.scale[0], f.scale[1]);
  if (given(cmd, "--shear")) a.shear = o.shear;
  if (given(cmd, "--elastic"))
    std::tie(a.elastic_alpha, a.elastic_sigma) = std::pair(f.elastic[0], f.elastic[1]);
  if (given(cmd, "--crop-padding")) a.crop_padding = o.crop_padding;
  if (given(cmd, "--erase")) a.erase = o.erase;
  if (given(cmd, "--erase-area"))
    std::tie(a.erase_area_min, a.erase_area_max) = std::pair(f.erase_area[0], f.erase_area[1]);
  check_augment(a);
}

// Fields of the recipe that the command line sets (the rest come from the preset or file).
void apply_recipe_flags(Recipe& r, const RecipeFlags& f, const CLI::App& cmd,
                        const std::vector<std::string>& skip) {
  auto given_here = [&](const char* name) {
    return std::find(skip.begin(), skip.end(), name) == skip.end() && given(cmd, name);
  };
  if (given_here("--optimizer")) {
    r.optimizer = f.recipe.optimizer;
    if (!given_here("--momentum")) r.momentum = 0;
    if (!given_here("--weight-decay")) r.weight_decay = r.optimizer == "adamw" ? 0.01f : 0.0f;
  }
  if (given_here("--lr")) r.lr = f.recipe.lr;
  if (given_here("--momentum")) r.momentum = f.recipe.momentum;
  if (given_here("--nesterov")) r.nesterov = true;
  if (given_here("--weight-decay")) r.weight_decay = f.recipe.weight_decay;
  if (given_here("--batch-size")) r.batch_size = f.recipe.batch_size;
  if (given_here("--epochs")) r.epochs = f.recipe.epochs;
  if (given_here("--seed")) r.seed = f.recipe.seed;
  if (given_here("--label-smoothing")) r.label_smoothing = f.recipe.label_smoothing;
  if (given_here("--init")) r.init = f.init == "glorot" ? Init::kGlorot : Init::kPyTorch;
  if (given_here("--normalize")) {
    SN_CHECK(f.normalize[1] > 0, "--normalize: STD must be positive, got {}", f.normalize[1]);
    r.preprocess = {true, f.normalize[0], f.normalize[1]};
  }
  if (given_here("--scale-only")) r.preprocess = {};
  apply_regularisation_flags(r, f.recipe, given_here);
  apply_schedule_flags(r, f, cmd);
  apply_augment_flags(r.augment, f.augment, cmd);
  check_recipe(r);
}
std::string describe_recipe(const Recipe& r) {
  std::string s = fmt::format("{} lr {}", r.optimizer, r.lr);
  if (r.momentum > 0) s += fmt::format(" momentum {}{}", r.momentum, r.nesterov ? " nesterov" : "");
  if (r.weight_decay > 0) s += fmt::format(" weight decay {}", r.weight_decay);
  if (r.label_smoothing > 0) s += fmt::format(" label smoothing {}", r.label_smoothing);
  if (r.l1 > 0) s += fmt::format(" l1 {}", r.l1);
  s += r.schedule.kind == "none" ? ", " : "; " + describe_schedule(r.schedule) + "; ";
  const FinetuneOptions& ft = r.finetune;
  if (!ft.freeze.empty()) s += fmt::format("freeze {}; ", fmt::join(ft.freeze, ","));
  if (ft.backbone_lr) s += fmt::format("backbone lr {}; ", *ft.backbone_lr);
  if (ft.unfreeze_every > 0)
    s += fmt::format("unfreezing a block every {} epoch{}; ", ft.unfreeze_every,
                     ft.unfreeze_every == 1 ? "" : "s");
  if (r.validation > 0) s += fmt::format("validation {}; ", r.validation);
  if (r.early_stop.active())
    s += fmt::format("early stop after {} epoch{} without {} improving; ", r.early_stop.patience,
                     r.early_stop.patience == 1 ? "" : "s", r.early_stop.monitor);
  if (r.augment.active()) s += "augment " + describe_augment(r.augment) + "; ";
  s += fmt::format("batch {}, {} epoch{}, seed {}", r.batch_size, r.epochs,
                   r.epochs == 1 ? "" : "s", r.seed);
  s += r.preprocess.normalize
           ? fmt::format(", pixels /255 then (x - {}) / {}", r.preprocess.mean, r.preprocess.std)
           : ", pixels /255";
  return s;
}

std::string run_settings_json(const RunSettings& r) {
  return json{{"model", r.model},           {"dataset", r.dataset},
              {"data_dir", r.data_dir},     {"limit_train", r.limit_train},
              {"limit_test", r.limit_test}, {"per_class", r.per_class}}
      .dump(2);
}

RunSettings read_run_settings(const std::string& path) {
  std::ifstream file(path);
  SN_CHECK(file.good(), "{}: cannot open: the run directory is incomplete", path);
  try {
    json j = json::parse(file);
    return {j.at("model"),       j.at("dataset"),    j.at("data_dir"),
            j.at("limit_train"), j.at("limit_test"), j.value("per_class", int64_t{0})};
  } catch (const json::exception& e) {
    fail("{}: malformed run settings: {}", path, e.what());
  }
}

void add_recipe_flags(CLI::App& cmd, RecipeFlags& f, bool preprocessing) {
  Recipe& r = f.recipe;
  cmd.add_option("--epochs", r.epochs, "Epochs (default: the recipe's)")->check(kPositive);
  cmd.add_option("--batch-size", r.batch_size, "Images per step")->check(kPositive);
  cmd.add_option("--optimizer", r.optimizer, "sgd, adam or adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}));
  cmd.add_option("--lr", r.lr, "Learning rate")->check(kPositive);
  cmd.add_option("--momentum", r.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999999));
  cmd.add_flag("--nesterov", r.nesterov, "Nesterov momentum (SGD)");
  cmd.add_option("--weight-decay", r.weight_decay,
                 "L2 penalty: weight_decay * w added to the gradient (sgd, adam), or decoupled "
                 "weight decay shrinking w each step (adamw)")
      ->check(kNonNegative);
  cmd.add_option("--label-smoothing", r.label_smoothing,
                 "In [0, 1): the cross-entropy's target mixes in this much of the uniform "
                 "distribution (Dropout layers come from the model spec)")
      ->check(CLI::Range(0.0, 0.999999));
  cmd.add_option("--seed", r.seed, "Seed for weights, shuffling and dropout");
  cmd.add_option("--init", f.init, "Weight initialisation: pytorch or glorot (Keras)")
      ->check(CLI::IsMember({"pytorch", "glorot"}));
  if (preprocessing) {
    cmd.add_option("--normalize", f.normalize, "Normalise pixels as (x/255 - MEAN) / STD")
        ->expected(2)
        ->type_name("MEAN STD");
    cmd.add_flag("--scale-only", f.scale_only, "Only scale pixels to [0, 1]")
        ->excludes("--normalize");
  }
  add_regularisation_flags(cmd, r);
  add_schedule_flags(cmd, r.schedule);
  add_augment_flags(cmd, f.augment);
}

void add_model_flags(CLI::App& cmd, std::string& model, std::string& dataset) {
  cmd.add_option("--model", model,
                 "A preset (basic, bn), a model spec (.json) or a model file to start from")
      ->capture_default_str();
  cmd.add_option("--dataset", dataset,
                 "A data set name (mnist, fashion-mnist) or a directory of IDX files")
      ->capture_default_str();
}

void add_limit_flags(CLI::App& cmd, int64_t& limit_train, int64_t& limit_test, int64_t& per_class) {
  cmd.add_option("--limit-train", limit_train, "Use only the first N training images")
      ->check(kPositive);
  cmd.add_option("--limit-test", limit_test, "Use only the first N test images")->check(kPositive);
  cmd.add_option("--per-class", per_class,
                 "Few-shot: train on the first N training images of each class (the test set "
                 "is kept whole)")
      ->check(kPositive);
}

std::vector<std::string> recipe_flag_names() {
  std::vector<std::string> names = {
      "--optimizer",    "--lr",         "--momentum",   "--nesterov",
      "--weight-decay", "--batch-size", "--seed",       "--label-smoothing",
      "--init",         "--normalize",  "--scale-only", "--schedule",
      "--l1",           "--validation", "--early-stop", "--early-stop-monitor",
      "--min-delta"};
  for (const auto& [flag, kinds] : schedule_flags()) names.push_back(flag);
  names.insert(names.end(), std::begin(kAugmentFlagNames), std::end(kAugmentFlagNames));
  return names;
}

DatasetSplits load_limited(const RunSettings& run) {
  DatasetSplits s = load_dataset(run.dataset, run.data_dir);
  if (run.per_class > 0) s.train = take_per_class(s.train, run.per_class);
  if (run.limit_train > 0) s.train = take_first(s.train, std::min(run.limit_train, s.train.size()));
  if (run.limit_test > 0) s.test = take_first(s.test, std::min(run.limit_test, s.test.size()));
  return s;
}

void run_training(Trainer& trainer, Sequential& model, const DatasetSplits& data,
                  const RunSettings& run, ModelInfo info, const std::string& out_dir, bool resuming,
                  bool quiet) {
  const Recipe& recipe = trainer.recipe();
  const int64_t classes = shape_numel(model.output_shape(model.size() - 1));
  fs::create_directories(out_dir);
  if (!resuming)
    write_text_atomic((fs::path(out_dir) / "run.json").string(), run_settings_json(run) + "\n");

  const Dataset* validation = trainer.validation_set();
  const std::string images = fmt::format(
      "{} training{} and {} test images", trainer.train_set().size(),
      validation ? fmt::format(", {} validation", validation->size()) : "", data.test.size());
  fmt::print("{} {} ({} parameters, {:.1f} MFLOP per image) on {}: {}\n",
             resuming ? "resuming" : "training", run.model, model.num_params(),
             model.flops_per_sample() / 1e6, run.dataset, images);
  fmt::print("recipe: {}; {} thread{}; output {}\n", describe_recipe(recipe), num_threads(),
             num_threads() == 1 ? "" : "s", out_dir);
  if (resuming) fmt::print("continuing after epoch {}\n", trainer.epochs_done());

  const std::string report_path = (fs::path(out_dir) / "report.html").string();
  const std::string best_path = (fs::path(out_dir) / "best.safetensors").string();
  if (!resuming) fs::remove(best_path);  // a replaced run's
  Report report{.title = fmt::format("{} on {}", run.model, run.dataset),
                .model = fmt::format("{}: {} parameters, {:.1f} MFLOP per image", run.model,
                                     model.num_params(), model.flops_per_sample() / 1e6),
                .dataset = fmt::format("{}: {}", run.dataset, images),
                .recipe = describe_recipe(recipe),
                .layers = model.summary(),
                .threads = num_threads(),
                .classes = classes,
                .class_names = info.class_names};
  Progress progress(quiet);
  trainer.fit({.on_step = [&](const StepInfo& s) { progress.step(s); },
               .on_epoch =
                   [&](const EpochMetrics& m) {
                     progress.epoch(m);
                     announce_unfreezing(model, recipe, m.epoch);
                     std::string lines;
                     for (const auto& h : trainer.history()) lines += h.to_json() + "\n";
                     write_text_atomic((fs::path(out_dir) / "metrics.jsonl").string(), lines);
                     info.metrics = m.to_json();
                     trainer.save_checkpoint(
                         (fs::path(out_dir) / "checkpoint.safetensors").string(), info);
                     save_model((fs::path(out_dir) / "model.safetensors").string(), model, info);
                     if (trainer.best() && trainer.best()->best_epoch() == m.epoch)
                       save_model(best_path, model, info);
                     // The whole history (a resumed run's too: the checkpoint restores it) and
                     // the test evaluation of the epoch just finished.
                     report.epochs = trainer.history();
                     report.confusion = trainer.last_test().confusion;
                     report.mistakes =
                         most_confident_mistakes(trainer.last_test(), data.test, kReportMistakes);
                     report.filters = first_conv_filters(model);
                     write_report(report_path, report);
                   }});
  const EpochMetrics& last = trainer.history().back();
  double total = 0;
  for (const auto& h : trainer.history()) total += h.seconds;
  fmt::print("test accuracy {} ({}/{}) after {} epoch{}, {} per epoch\n",
             percent(last.test_accuracy), std::llround(last.test_accuracy * data.test.size()),
             data.test.size(), last.epoch, last.epoch == 1 ? "" : "s",
             duration(total / trainer.history().size()));
  if (trainer.stopped_early())
    fmt::print("stopped early after epoch {}: {} did not improve for {} epochs\n", last.epoch,
               recipe.early_stop.monitor, recipe.early_stop.patience);
  if (const EarlyStopping* best = trainer.best(); best && best->best_epoch() > 0) {
    const EpochMetrics& b = trainer.history()[best->best_epoch() - 1];
    fmt::print("best epoch {} by {}: {}test accuracy {}; saved to {}\n", b.epoch,
               recipe.early_stop.monitor,
               std::isnan(b.val_accuracy) ? ""
                                          : fmt::format("validation accuracy {} (loss {:.4f}), ",
                                                        percent(b.val_accuracy), b.val_loss),
               percent(b.test_accuracy), best_path);
  }
  fmt::print("model saved to {}\n", (fs::path(out_dir) / "model.safetensors").string());
  fmt::print("report written to {}\n", report_path);
}

}  // namespace scratchnet::cli
