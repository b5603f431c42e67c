// scratchnet tune — hyper-parameter search: a grid or seeded random search over recipe fields,
// each trial trained on the training set less a validation split and ranked on that split.
#include "scratchnet/train/tune.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/io/atomic_file.h"
#include "scratchnet/presets.h"
#include "scratchnet/train/evaluate.h"
#include "training.h"

namespace scratchnet::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The recipe flags tune searches over, and the Recipe fields they set.
const std::vector<std::pair<std::string, std::string>> kSearchFlags = {
    {"--lr", "lr"},
    {"--weight-decay", "weight_decay"},
    {"--l1", "l1"},
    {"--label-smoothing", "label_smoothing"},
    {"--batch-size", "batch_size"},
    {"--epochs", "epochs"},
    {"--optimizer", "optimizer"}};

struct TuneFlags {
  CommonFlags common;
  std::string model = "basic";
  std::string dataset = "mnist";
  std::string out = "runs/tune";
  RecipeFlags recipe;
  std::map<std::string, std::string> space;  // flag -> its text
  std::string search = "grid";
  int64_t trials = 0;
  uint64_t search_seed = 1;
  double budget = 0;
  int64_t budget_epochs = 0;
  int64_t limit_train = 0, limit_test = 0, per_class = 0;
  bool force = false, json = false;
};

std::string param_value(const Trial& t, const std::string& name) {
  for (const auto& [n, v] : t.params)
    if (n == name) return v;
  return "";
}

// The ranked table: rank, trial, each searched parameter, validation accuracy and loss, time.
void print_table(const std::vector<TrialResult>& results, const std::vector<size_t>& order,
                 const SearchSpace& space) {
  std::vector<std::vector<std::string>> rows = {{"rank", "trial"}};
  for (const SearchParam& p : space) rows[0].push_back(p.name);
  for (const char* h : {"val acc", "val loss", "time"}) rows[0].push_back(h);
  for (size_t rank = 0; rank < order.size(); ++rank) {
    const TrialResult& r = results[order[rank]];
    std::vector<std::string> row = {std::to_string(rank + 1), std::to_string(r.index + 1)};
    for (const SearchParam& p : space) row.push_back(param_value(r.trial, p.name));
    row.push_back(percent(r.val_accuracy));
    row.push_back(fmt::format("{:.4f}", r.val_loss));
    row.push_back(duration(r.seconds));
    rows.push_back(std::move(row));
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) line += fmt::format("{:>{}}  ", row[c], width[c]);
    fmt::print("{}\n", line.substr(0, line.find_last_not_of(' ') + 1));
  }
}

void run_tune(TuneFlags& f, const CLI::App& cmd) {
  apply_threads(f.common);
  std::vector<std::string> searched;
  SearchSpace space;
  for (const auto& [flag, name] : kSearchFlags) {
    searched.push_back(flag);
    if (cmd.count(flag) == 0) continue;
    try {
      space.push_back(parse_search_param(name, f.space.at(flag)));
    } catch (const Error& e) {
      fail("{} {}: {}", flag, f.space.at(flag), e.what());
    }
  }
  const bool random = f.search == "random";
  SN_CHECK(random || cmd.count("--trials") == 0,
           "--trials applies to --search random (the grid runs every combination)");
  SN_CHECK(!random || f.trials > 0, "--search random needs --trials N");
  if (!random)
    for (const SearchParam& p : space)
      SN_CHECK(!p.is_range(),
               "--search grid cannot take the range {}:{} of {}: give a list "
               "(A,B,...) or use --search random",
               p.low, p.high, p.name);
  const std::vector<Trial> trials =
      random ? random_trials(space, f.trials, f.search_seed) : grid_trials(space);

  ModelSource src = open_model(f.model);
  Recipe recipe;
  if (src.is_preset)
    recipe = preset_recipe(f.model);
  else if (!src.loaded.info.recipe.empty())
    recipe = recipe_from_json(src.loaded.info.recipe, f.model + " (recipe)");
  if (cmd.count("--validation") == 0 && recipe.validation == 0) recipe.validation = 0.1;
  apply_recipe_flags(recipe, f.recipe, cmd, searched);
  for (const Trial& t : trials) apply_trial(recipe, t);  // every trial's recipe is valid

  const fs::path out(f.out);
  SN_CHECK(f.force || !fs::exists(out / "trials.jsonl"),
           "{} already holds a search (trials.jsonl): use --force to replace it, or another --out",
           f.out);
  const RunSettings run{f.model,       f.dataset,    f.common.data_dir,
                        f.limit_train, f.limit_test, f.per_class};
  const DatasetSplits data = load_limited(run);
  fs::create_directories(out);
  fs::remove(out / "trials.jsonl");

  FILE* log = f.json ? stderr : stdout;
  fmt::print(log,
             "tuning {} on {}: {} trial{} ({} search), each trained on {} images less a {} "
             "validation split, ranked by validation accuracy\n",
             f.model, run.dataset, trials.size(), trials.size() == 1 ? "" : "s", f.search,
             data.train.size(), recipe.validation);
  fmt::print(log, "base recipe: {}\n", describe_recipe(recipe));
  std::string lines;
  std::optional<TrialResult> best;  // so far
  const std::string model_path = (out / "model.safetensors").string();
  auto make_model = [&](const Recipe& r) {
    ModelSource m = open_model(f.model);
    if (!m.has_weights) m.loaded.model.init(r.init, r.seed);
    return std::move(m.loaded.model);
  };
  std::vector<TrialResult> results = run_search(
      trials, recipe, make_model, data.train, {.seconds = f.budget, .epochs = f.budget_epochs},
      [&](const TrialResult& r, Sequential& model) {
        fmt::print(log, "trial {}/{}  {}  val acc {}  val loss {:.4f}  {}\n", r.index + 1,
                   trials.size(), r.trial.describe(), percent(r.val_accuracy), r.val_loss,
                   duration(r.seconds));
        std::fflush(log);
        lines += r.to_json() + "\n";
        write_text_atomic((out / "trials.jsonl").string(), lines);
        if (best && !ranks_before(r, *best)) return;
        best = r;
        ModelInfo info{
            .preprocess = r.recipe.preprocess,
            .class_names = data.train.class_names,
            .recipe = recipe_to_json(r.recipe),
            .metrics = r.history.back().to_json(),
            .origin = fmt::format("scratchnet tune, trial {}: {}", r.index + 1, r.trial.describe()),
            .dataset = run.dataset};
        if (static_cast<int64_t>(info.class_names.size()) !=
            shape_numel(model.output_shape(model.size() - 1)))
          info.class_names.clear();
        save_model(model_path, model, info);
      });
  const std::vector<size_t> order = rank_trials(results);
  const TrialResult& top = results[order[0]];
  LoadedModel best_model = load_model(model_path);
  const EvalResult test = evaluate(best_model.model, data.test, top.recipe.preprocess);
  const std::string ran = fmt::format(
      "{} of {} trial{} ran{}", results.size(), trials.size(), trials.size() == 1 ? "" : "s",
      results.size() < trials.size() ? " (the budget was spent)" : "");
  if (f.json) {
    json ranked = json::array();
    for (size_t i : order) ranked.push_back(json::parse(results[i].to_json()));
    fmt::print("{}\n", json{{"trials", ranked},
                            {"ran", results.size()},
                            {"planned", trials.size()},
                            {"best_trial", top.index + 1},
                            {"best_test_accuracy", test.accuracy},
                            {"model", model_path}}
                           .dump());
    return;
  }
  fmt::print("{}\n", ran);
  print_table(results, order, space);
  fmt::print(
      "best: trial {} ({}), validation accuracy {}; its test accuracy {} on {} images "
      "(not used for ranking)\n",
      top.index + 1, top.trial.describe(), percent(top.val_accuracy), percent(test.accuracy),
      data.test.size());
  fmt::print("model saved to {}, every trial in {}\n", model_path, (out / "trials.jsonl").string());
}

}  // namespace

void add_tune(CLI::App& app) {
  auto flags = std::make_shared<TuneFlags>();
  TuneFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand(
      "tune",
      "Search hyper-parameters: train one model per setting (a grid, or random samples) on the "
      "training set less a validation split (--validation, default 0.1) and rank the settings "
      "by validation accuracy. The test set never ranks anything; the best model's test "
      "accuracy is shown at the end.\n"
      "Writes DIR/trials.jsonl (one line per trial as it finishes) and DIR/model.safetensors "
      "(the best trial's model).");
  add_model_flags(*cmd, f.model, f.dataset);
  add_data_dir_flag(*cmd, f.common);
  cmd->add_option("--out", f.out, "Output directory")->capture_default_str();
  cmd->add_flag("--force", f.force, "Replace a search already in the output directory");
  add_recipe_flags(*cmd, f.recipe, true);
  const char* group = "Search space (lists A,B,... or, with --search random, ranges LO:HI)";
  const std::map<std::string, const char*> help = {
      {"--lr", "Learning rates: a list, or a range sampled log-uniformly, e.g. 1e-4:1e-2"},
      {"--weight-decay", "L2 weight decays: a list or a log-uniform range"},
      {"--l1", "L1 penalties: a list or a log-uniform range"},
      {"--label-smoothing", "Label smoothings in [0, 1): a list or a uniform range"},
      {"--batch-size", "Batch sizes: a list"},
      {"--epochs", "Epochs: a list"},
      {"--optimizer", "Optimisers (sgd, adam, adamw): a list"}};
  for (const auto& [flag, name] : kSearchFlags) {
    cmd->remove_option(cmd->get_option(flag));
    cmd->add_option(flag, f.space[flag], help.at(flag))->type_name("LIST")->group(group);
  }
  cmd->add_option("--search", f.search,
                  "grid: every combination of the lists; random: --trials samples")
      ->capture_default_str()
      ->check(CLI::IsMember({"grid", "random"}))
      ->group(group);
  cmd->add_option("--trials", f.trials, "Random search: how many settings to sample")
      ->check(kPositive)
      ->group(group);
  cmd->add_option("--search-seed", f.search_seed, "Random search: the sampling seed")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--budget", f.budget,
                  "Start no new trial after this many seconds (the running one finishes)")
      ->type_name("SECONDS")
      ->check(kPositive)
      ->group(group);
  cmd->add_option("--budget-epochs", f.budget_epochs,
                  "Start no new trial once the trials have trained this many epochs in all")
      ->type_name("N")
      ->check(kPositive)
      ->group(group);
  add_limit_flags(*cmd, f.limit_train, f.limit_test, f.per_class);
  add_threads_flag(*cmd, f.common);
  cmd->add_flag("--json", f.json,
                "Print the ranked trials as one JSON object (the per-trial lines go to stderr)");
  cmd->callback([flags, cmd] { run_tune(*flags, *cmd); });
}

}  // namespace scratchnet::cli
