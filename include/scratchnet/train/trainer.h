// trainer.h — the training loop: batches, loss, backward, optimiser step, metrics,
// checkpoints that resume a run exactly.
//
//   Sequential model = make_preset("basic");
//   model.init(recipe.init, recipe.seed);
//   Trainer trainer(model, splits.train, &splits.test, recipe);
//   trainer.fit({.on_epoch = [&](const EpochMetrics& m) { trainer.save_checkpoint(...); }});
//
// Each step: forward in training mode, softmax cross-entropy (with the recipe's label
// smoothing), zero the gradients, backward, optimiser step at the schedule's lr. The epoch's
// batches come from a BatchLoader seeded with the recipe's seed, so epoch e's order depends only on
// (seed, e), and so do its images augmented by recipe.augment (loader.h; the test set is never
// augmented). A checkpoint holds the weights and buffers, the optimiser state, every dropout stream
// and the metrics so far: training 2 epochs, saving, and resuming in a new process for 2 more gives
// bit-identical weights to 4 epochs in one go (same seed and thread count).
//
// The recipe's learning-rate schedule (schedule.h) runs as PyTorch's schedulers do in a
// training loop: the optimiser gets float(schedule.lr()) before every step; a per-step
// schedule ticks after every batch, a per-epoch one after the epoch's evaluation (plateau with
// the epoch's `monitor` metric). The schedule's state is part of the checkpoint. The length of
// a cosine or onecycle schedule follows recipe.epochs, so a checkpoint of such a run cannot be
// resumed with other epochs. One-cycle momentum is not cycled (schedule.h says why).
//
// A recipe that fine-tunes (recipe.finetune, finetune.h) freezes its layers at the start of
// every epoch (gradual unfreezing makes the set shrink), and backward stops at the first layer
// that trains. With a backbone lr the optimiser has two groups, backbone then head, each with
// its own schedule from its own lr; EpochMetrics and StepInfo report the head's lr.
//
// Regularisation and model selection (recipe.h): with recipe.l1 each step adds l1 * sign(w) to
// the gradient of every Conv2d and Linear weight that trains, and the step's loss (so
// train_loss) includes l1 * sum |w|. With recipe.validation the trainer holds that fraction of
// the training set out (take_validation_split, seeded with the recipe's seed), trains on the
// rest and evaluates the held-out part after every epoch (val_loss, val_accuracy). With a
// validation set or early stopping it tracks the best epoch of recipe.early_stop.monitor
// (best()), and with early stopping fit() returns after `patience` epochs without improvement.
// Checkpoints carry the held-out indices and the early-stopping state.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "scratchnet/data/dataset.h"
#include "scratchnet/io/model_file.h"
#include "scratchnet/model.h"
#include "scratchnet/optim/optimizer.h"
#include "scratchnet/train/early_stop.h"
#include "scratchnet/train/evaluate.h"
#include "scratchnet/train/recipe.h"
#include "scratchnet/train/schedule.h"

namespace scratchnet {

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0;
  double test_loss = 0, test_accuracy = 0;    // NaN without a test set
  double val_loss = NAN, val_accuracy = NAN;  // NaN without a validation set (recipe.validation)
  double seconds = 0;                         // training time, evaluation excluded
  double images_per_second = 0;
  double lr = 0;  // the lr the epoch's steps used; with a per-step schedule, its last step's

  // One line, for metrics.jsonl; NaN is written as null, val_loss and val_accuracy only when
  // there is a validation set.
  std::string to_json() const;
};

struct StepInfo {
  int64_t epoch = 0, epochs = 0;  // 1-based epoch
  int64_t step = 0, steps = 0;    // 1-based step within the epoch
  double loss = 0, accuracy = 0;  // running means over the epoch so far
  double seconds = 0;             // since the epoch started
  double images_per_second = 0;
  double lr = 0;  // the lr this step used
};

struct TrainCallbacks {
  std::function<void(const StepInfo&)> on_step;
  std::function<void(const EpochMetrics&)> on_epoch;
};

class Trainer {
 public:
  // `model` must be built; it and the data sets must outlive the trainer. `test` may be null
  // (not with a plateau schedule or a best-epoch monitor on the test set).
  Trainer(Sequential& model, const Dataset& train, const Dataset* test, Recipe recipe);
  ~Trainer();

  // Trains from the current epoch up to `until_epoch` (default: recipe.epochs), or until early
  // stopping ends the run. on_epoch runs after best() has seen the epoch.
  void fit(const TrainCallbacks& callbacks = {}, int64_t until_epoch = -1);

  int64_t epochs_done() const { return static_cast<int64_t>(history_.size()); }
  const std::vector<EpochMetrics>& history() const { return history_; }
  const Recipe& recipe() const { return recipe_; }
  // The images trained on: the training set less the validation set held out of it.
  const Dataset& train_set() const { return *train_; }
  // The validation set (recipe.validation > 0), or null; held_out() are its indices in the
  // training set the trainer was given, increasing.
  const Dataset* validation_set() const { return validation_; }
  const std::vector<int64_t>& held_out() const { return split_.held_out; }
  // The best epoch so far by recipe.early_stop.monitor, tracked with a validation set or early
  // stopping; null otherwise.
  const EarlyStopping* best() const { return best_.get(); }
  // Whether early stopping has ended the run (a resumed run that had stopped stays stopped).
  bool stopped_early() const { return best_ && best_->should_stop(); }
  // The test set's evaluation after the last epoch this trainer ran (count 0 before its first
  // epoch, after a resume, and without a test set): predictions and confusion for reports.
  const EvalResult& last_test() const { return last_test_; }
  Optimizer& optimizer() { return *optimizer_; }
  // The learning-rate schedule (the head's, with a backbone lr), or null when the recipe has none.
  const LrSchedule* schedule() const {
    return schedules_.empty() ? nullptr : schedules_.back().get();
  }

  // Everything needed to continue the run; `info` is stored as in a model file, so a
  // checkpoint also loads as a model (load_model ignores the optimiser state).
  void save_checkpoint(const std::string& path, const ModelInfo& info);
  // Restores weights, buffers, optimiser state, schedule state, dropout streams, metrics and
  // the early-stopping state from a checkpoint of this architecture, recipe and held-out set.
  void load_checkpoint(const std::string& path);

 private:
  Sequential& model_;
  Recipe recipe_;
  ValidationSplit split_;  // empty without a validation set
  const Dataset* train_;
  const Dataset* validation_ = nullptr;
  const Dataset* test_;
  std::unique_ptr<Optimizer> optimizer_;
  // The optimiser for the recipe: one parameter group, or with a backbone lr two (backbone, head).
  void build_optimizer();
  // Every group's lr from its schedule.
  void set_scheduled_lrs();
  // Freezes what the recipe freezes in `epoch`; returns the first layer that trains (where
  // backward may stop).
  size_t start_epoch_layers(int64_t epoch);

  std::vector<std::unique_ptr<LrSchedule>> schedules_;  // one per group; empty without a schedule
  int64_t steps_per_epoch_;
  std::vector<EpochMetrics> history_;
  EvalResult last_test_;
  std::unique_ptr<EarlyStopping> best_;
  std::vector<NamedParameter> l1_weights_;  // the trainable weights recipe.l1 applies to
};

}  // namespace scratchnet
