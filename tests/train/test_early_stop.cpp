// Tests for train/early_stop.h: improvement rules, patience, the options' JSON and the state
// a checkpoint carries.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "scratchnet/train/early_stop.h"
#include "support/error.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::StartsWith;

// Feeds `values` (epochs 1, 2, ...) and returns the epoch after which it stops, or 0.
int64_t stop_epoch(EarlyStopping& s, const std::vector<double>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    s.update(static_cast<int64_t>(i) + 1, values[i]);
    if (s.should_stop()) return static_cast<int64_t>(i) + 1;
  }
  return 0;
}

TEST(EarlyStopping, LossStopsAfterPatienceEpochsWithoutImprovement) {
  EarlyStopping s({.patience = 2, .monitor = "val_loss"});
  EXPECT_EQ(stop_epoch(s, {1.0, 0.8, 0.9, 0.7, 0.7, 0.75, 0.6}), 6);
  EXPECT_EQ(s.best_epoch(), 4);
  EXPECT_EQ(s.best(), 0.7);
  EXPECT_EQ(s.bad_epochs(), 2);
}

TEST(EarlyStopping, AccuracyIsMaximised) {
  EarlyStopping s({.patience = 1, .monitor = "test_accuracy"});
  EXPECT_TRUE(s.update(1, 0.5));
  EXPECT_TRUE(s.update(2, 0.6));
  EXPECT_FALSE(s.update(3, 0.55));
  EXPECT_TRUE(s.should_stop());
  EXPECT_EQ(s.best_epoch(), 2);
}

// Keras: a loss improves only when it falls below best - min_delta.
TEST(EarlyStopping, MinDeltaSetsTheSmallestImprovement) {
  EarlyStopping s({.patience = 3, .monitor = "val_loss", .min_delta = 0.1});
  EXPECT_TRUE(s.update(1, 1.0));
  EXPECT_FALSE(s.update(2, 0.95));
  EXPECT_FALSE(s.update(3, 0.9));  // exactly min_delta is not enough
  EXPECT_TRUE(s.update(4, 0.85));
  EXPECT_EQ(s.best(), 0.85);
  EXPECT_EQ(s.bad_epochs(), 0);
}

TEST(EarlyStopping, NanNeverImprovesAndPatienceZeroNeverStops) {
  EarlyStopping s({.patience = 0, .monitor = "val_accuracy"});
  EXPECT_FALSE(s.update(1, NAN));
  EXPECT_EQ(s.best_epoch(), 0);
  EXPECT_TRUE(std::isnan(s.best()));
  EXPECT_EQ(stop_epoch(s, {0.5, 0.4, 0.3, 0.2, 0.1}), 0);
  EXPECT_EQ(s.best_epoch(), 1);  // the first finite value
}

TEST(EarlyStopping, StateRoundTripsAndContinuesTheSame) {
  EarlyStopOptions o{.patience = 3, .monitor = "val_loss"};
  EarlyStopping straight(o), first(o);
  const std::vector<double> values = {0.9, 0.8, 0.85, 0.83, 0.81, 0.82};
  for (int64_t e = 1; e <= 3; ++e) first.update(e, values[e - 1]);
  EarlyStopping resumed(o);
  resumed.load_state(first.state_to_json(), "ckpt");
  EXPECT_EQ(resumed.state_to_json(), first.state_to_json());
  for (int64_t e = 4; e <= 6; ++e) resumed.update(e, values[e - 1]);
  EXPECT_EQ(stop_epoch(straight, values), 5);
  EXPECT_TRUE(resumed.should_stop());
  EXPECT_EQ(resumed.best_epoch(), straight.best_epoch());
  EXPECT_THAT(error_of([&] { resumed.load_state(R"({"best_epoch": 2})", "ckpt"); }),
              StartsWith("ckpt: the early-stopping state is malformed: "));
  EXPECT_EQ(error_of([&] {
              resumed.load_state(R"({"best_epoch": 0, "best": 1.5, "bad_epochs": 0})", "ckpt");
            }),
            R"(ckpt: the early-stopping state is inconsistent: {"best_epoch": 0, "best": 1.5, )"
            R"("bad_epochs": 0})");
}

TEST(EarlyStopOptionsJson, RoundTripAndErrors) {
  const EarlyStopOptions o{.patience = 4, .monitor = "val_accuracy", .min_delta = 0.001};
  EXPECT_EQ(early_stop_to_json(o), R"({"min_delta":0.001,"monitor":"val_accuracy","patience":4})");
  EXPECT_EQ(early_stop_from_json(early_stop_to_json(o), "r.json"), o);
  EXPECT_EQ(error_of([] { early_stop_from_json(R"({"patience": 1.5})", "r.json"); }),
            "r.json: early_stop.patience must be an integer, got 1.5");
  EXPECT_EQ(error_of([] { early_stop_from_json(R"({"wait": 1})", "r.json"); }),
            "r.json: unknown field 'early_stop.wait'");
  EXPECT_EQ(error_of([] { early_stop_from_json(R"({"monitor": "train_loss"})", "r.json"); }),
            "r.json: early_stop.monitor must be val_loss, val_accuracy, test_loss or "
            "test_accuracy, got 'train_loss'");
  EXPECT_EQ(error_of([] { check_early_stop({.patience = -1}); }),
            "early_stop.patience must be at least 0, got -1");
  EXPECT_EQ(error_of([] { check_early_stop({.min_delta = -0.5}); }),
            "early_stop.min_delta must be at least 0, got -0.5");
}

}  // namespace
}  // namespace scratchnet
