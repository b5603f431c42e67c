// tune.h — hyper-parameter search: a search space over recipe fields, its grid or seeded random
// samples, and trials trained by the Trainer on a validation split, ranked by validation
// accuracy (never by the test set: the trials get none).
//
//   SearchSpace space = {parse_search_param("lr", "1e-4:1e-2"),
//                        parse_search_param("batch_size", "32,64")};
//   std::vector<Trial> trials = random_trials(space, 8, /*seed=*/1);   // or grid_trials(space)
//   recipe.validation = 0.1;
//   std::vector<TrialResult> done = run_search(trials, recipe, make_model, train, {.seconds =
//   600}); size_t best = rank_trials(done)[0];
//
// Parameters, named as Recipe's fields, and what they take:
//   lr, weight_decay, l1   numbers: a list "A,B,..." or a range "LO:HI" (0 < LO < HI), sampled
//                          log-uniformly, as lr and decay ranges usually are
//   label_smoothing        numbers in [0, 1): a list or a range, sampled uniformly
//   batch_size, epochs     integers >= 1: a list
//   optimizer              sgd, adam, adamw: a list (a trial with adam or adamw drops the base
//                          recipe's momentum)
// The grid is the product of the lists in the space's order, the last parameter varying
// fastest (itertools.product); ranges need random search. A random trial draws every
// parameter from one Rng(seed) stream: a list value uniformly, a range as above, written with
// 4 significant digits (the trial trains with the value it shows).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "scratchnet/data/dataset.h"
#include "scratchnet/model.h"
#include "scratchnet/train/recipe.h"
#include "scratchnet/train/trainer.h"

namespace scratchnet {

struct SearchParam {
  std::string name;                 // a Recipe field: lr, batch_size, ...
  std::vector<std::string> values;  // a list, as written; empty for a range
  double low = 0, high = 0;         // a range

  bool is_range() const { return values.empty(); }
};
using SearchSpace = std::vector<SearchParam>;

// The parameter names parse_search_param knows, in the order above.
std::vector<std::string> search_param_names();
// Reads "A,B,..." or "LO:HI" for parameter `name`. Throws on an unknown name ("unknown search
// parameter 'momentum' (known: lr, ...)"); otherwise the message says what is wrong with
// `text` without naming the parameter, for the caller to prefix: "empty value in '1e-3,,3e-3'",
// "'fast' is not a number", "range 1e-2:1e-4 needs LO < HI", "lr must be positive, got -1".
SearchParam parse_search_param(const std::string& name, const std::string& text);

// One setting of the searched parameters: (name, value) in the space's order.
struct Trial {
  std::vector<std::pair<std::string, std::string>> params;
  std::string describe() const;  // "lr 0.003, batch_size 64"
};

// Every combination of the lists; throws when a parameter is a range ("lr 0.0001:0.01 is a
// range: ranges need random search").
std::vector<Trial> grid_trials(const SearchSpace& space);
// `count` (>= 1) trials drawn as described above; the same seed gives the same trials.
std::vector<Trial> random_trials(const SearchSpace& space, int64_t count, uint64_t seed);
// `base` with the trial's values set, checked (check_recipe).
Recipe apply_trial(Recipe base, const Trial& trial);

struct TrialResult {
  int64_t index = 0;  // 0-based position in the trials run_search was given
  Trial trial;
  Recipe recipe;
  std::vector<EpochMetrics> history;
  double val_loss = 0, val_accuracy = 0;  // the last epoch's
  double seconds = 0;                     // training and validation, wall clock

  // One line for trials.jsonl: {"trial": 1, "params": {"lr": 0.003, "optimizer": "adam"},
  // "val_accuracy", "val_loss", "epochs", "seconds"}.
  std::string to_json() const;
};

// 0 leaves a limit out.
struct SearchBudget {
  double seconds = 0;  // wall-clock seconds since the search started
  int64_t epochs = 0;  // training epochs over all trials
};

// Trains the trials in order, each from make_model(recipe) (a built model, initialised as the
// recipe says), on `train` less the validation split base.validation (> 0) holds out, with no
// test set. A trial starts only while the budget is not spent (the running one finishes), so
// fewer results than trials may come back. on_trial sees each result with its trained model.
std::vector<TrialResult> run_search(
    const std::vector<Trial>& trials, const Recipe& base,
    const std::function<Sequential(const Recipe&)>& make_model, const Dataset& train,
    const SearchBudget& budget,
    const std::function<void(const TrialResult&, Sequential&)>& on_trial = {});

// Positions in `results`, best first: highest validation accuracy, then lowest validation loss,
// then the earlier trial.
std::vector<size_t> rank_trials(const std::vector<TrialResult>& results);
// Whether `a` ranks before `b` by that order.
bool ranks_before(const TrialResult& a, const TrialResult& b);

}  // namespace scratchnet
