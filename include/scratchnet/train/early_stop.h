// early_stop.h — the best epoch of a monitored metric, and early stopping when it stops
// improving, as keras.callbacks.EarlyStopping (mode from the metric's name, baseline None).
//
//   EarlyStopping stop({.patience = 3, .monitor = "val_loss", .min_delta = 1e-3});
//   for (epoch = 1...) { train(); if (stop.update(epoch, val_loss)) save_best(); if
//   (stop.should_stop()) break; }
//
// A loss improves when it falls below best - min_delta, an accuracy when it rises above
// best + min_delta; the first finite value always improves, and NaN never does. Every epoch
// without improvement counts as bad; after `patience` bad epochs in a row should_stop() is true
// (patience 0: never). The Trainer (trainer.h) runs one from Recipe::early_stop and stores its
// state in checkpoints, so a resumed run stops at the same epoch as an uninterrupted one.
#pragma once

#include <cstdint>
#include <string>

namespace scratchnet {

struct EarlyStopOptions {
  int64_t patience = 0;  // >= 0 bad epochs in a row before stopping; 0: never stop
  // val_loss, val_accuracy (the validation set held out by Recipe::validation), test_loss or
  // test_accuracy. Losses are minimised, accuracies maximised.
  std::string monitor = "val_loss";
  double min_delta = 0;  // >= 0, the smallest change that counts as an improvement

  bool active() const { return patience > 0; }
  bool operator==(const EarlyStopOptions&) const = default;
};

// Throws a one-line message naming the field: "early_stop.patience must be at least 0, got -1".
void check_early_stop(const EarlyStopOptions& options);
// {"patience": 3, "monitor": "val_loss", "min_delta": 0.001}; reading checks the fields like
// recipe_from_json, naming `source`.
std::string early_stop_to_json(const EarlyStopOptions& options);
EarlyStopOptions early_stop_from_json(const std::string& json_text, const std::string& source);

class EarlyStopping {
 public:
  explicit EarlyStopping(const EarlyStopOptions& options);

  const EarlyStopOptions& options() const { return options_; }
  // Records epoch `epoch`'s (1-based) value of the monitored metric; true when it improved on
  // the best so far (that epoch is then the best).
  bool update(int64_t epoch, double value);
  bool should_stop() const { return options_.active() && bad_epochs_ >= options_.patience; }
  int64_t best_epoch() const { return best_epoch_; }  // 0 before any improvement
  double best() const { return best_; }               // NaN before any improvement
  int64_t bad_epochs() const { return bad_epochs_; }  // since the best epoch

  // {"best_epoch", "best", "bad_epochs"} for checkpoints; load_state() throws naming `source`
  // when the JSON is malformed.
  std::string state_to_json() const;
  void load_state(const std::string& json_text, const std::string& source);

 private:
  EarlyStopOptions options_;
  bool maximize_;
  int64_t best_epoch_ = 0, bad_epochs_ = 0;
  double best_;
};

}  // namespace scratchnet
