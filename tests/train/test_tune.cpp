// Tests for train/tune.h: search spaces, the grid, seeded log-uniform sampling, ranking, the
// budget and a small search on a toy set.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "scratchnet/model_spec.h"
#include "scratchnet/train/tune.h"
#include "support/error.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

std::vector<std::string> values(const Trial& t) {
  std::vector<std::string> v;
  for (const auto& [name, value] : t.params) v.push_back(name + "=" + value);
  return v;
}

TEST(SearchSpace, GridIsTheProductLastParameterFastest) {
  const SearchSpace space = {parse_search_param("lr", "1e-3,3e-3,1e-2"),
                             parse_search_param("batch_size", "32,64"),
                             parse_search_param("optimizer", "adam")};
  const std::vector<Trial> grid = grid_trials(space);
  ASSERT_EQ(grid.size(), 6u);
  EXPECT_EQ(values(grid[0]),
            (std::vector<std::string>{"lr=1e-3", "batch_size=32", "optimizer=adam"}));
  EXPECT_EQ(values(grid[1]),
            (std::vector<std::string>{"lr=1e-3", "batch_size=64", "optimizer=adam"}));
  EXPECT_EQ(values(grid[5]),
            (std::vector<std::string>{"lr=1e-2", "batch_size=64", "optimizer=adam"}));
  std::set<std::vector<std::string>> distinct;
  for (const Trial& t : grid) distinct.insert(values(t));
  EXPECT_EQ(distinct.size(), 6u);
  EXPECT_EQ(grid[1].describe(), "lr 1e-3, batch_size 64, optimizer adam");
  EXPECT_EQ(grid_trials({}).size(), 1u);  // the base recipe alone
}

TEST(SearchSpace, RandomSamplingIsSeededAndWithinLogUniformRanges) {
  const SearchSpace space = {parse_search_param("lr", "1e-4:1e-2"),
                             parse_search_param("label_smoothing", "0:0.2"),
                             parse_search_param("epochs", "1,2")};
  const std::vector<Trial> a = random_trials(space, 400, 5), b = random_trials(space, 400, 5);
  ASSERT_EQ(a.size(), 400u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(values(a[i]), values(b[i]));
  EXPECT_NE(values(random_trials(space, 1, 6)[0]), values(a[0]));
  int below_1e3 = 0, low_smoothing = 0, one_epoch = 0;
  for (const Trial& t : a) {
    const double lr = std::stod(t.params[0].second), ls = std::stod(t.params[1].second);
    EXPECT_GE(lr, 1e-4);
    EXPECT_LE(lr, 1e-2);
    EXPECT_GE(ls, 0);
    EXPECT_LE(ls, 0.2);
    below_1e3 += lr < 1e-3;
    low_smoothing += ls < 0.1;
    one_epoch += t.params[2].second == "1";
  }
  // Log-uniform: half the samples below the geometric middle 1e-3 (uniform would put 9% there);
  // label smoothing is uniform: half below 0.1.
  EXPECT_NEAR(below_1e3, 200, 40);
  EXPECT_NEAR(low_smoothing, 200, 40);
  EXPECT_NEAR(one_epoch, 200, 40);
}

TEST(SearchSpace, AppliesTrialsToTheRecipe) {
  Recipe base{.optimizer = "sgd", .momentum = 0.9f};
  const Recipe r = apply_trial(base, {{{"optimizer", "adam"},
                                       {"lr", "0.003"},
                                       {"batch_size", "16"},
                                       {"weight_decay", "1e-4"},
                                       {"l1", "1e-5"},
                                       {"epochs", "2"}}});
  EXPECT_EQ(r.optimizer, "adam");
  EXPECT_EQ(r.momentum, 0.0f);  // adam has none
  EXPECT_EQ(r.lr, 0.003f);
  EXPECT_EQ(r.batch_size, 16);
  EXPECT_EQ(r.weight_decay, 1e-4f);
  EXPECT_EQ(r.l1, 1e-5f);
  EXPECT_EQ(r.epochs, 2);
}

TEST(SearchSpace, BadInput) {
  auto error = [](const std::string& name, const std::string& text) {
    return error_of([&] { parse_search_param(name, text); });
  };
  EXPECT_EQ(error("momentum", "0.9"),
            "unknown search parameter 'momentum' (known: lr, weight_decay, l1, label_smoothing, "
            "batch_size, epochs, optimizer)");
  EXPECT_EQ(error("lr", "1e-3,,3e-3"), "empty value in '1e-3,,3e-3'");
  EXPECT_EQ(error("lr", ""), "empty value in ''");
  EXPECT_EQ(error("lr", "1e-2:1e-4"), "range 1e-2:1e-4 needs LO < HI");
  EXPECT_EQ(error("lr", "1e-2:1e-2"), "range 1e-2:1e-2 needs LO < HI");
  EXPECT_EQ(error("weight_decay", "0:1e-3"),
            "range 0:1e-3 is sampled log-uniformly and needs LO > 0");
  EXPECT_EQ(error("lr", "fast"), "'fast' is not a number");
  EXPECT_EQ(error("lr", "0.1,-1"), "lr must be positive, got -1");
  EXPECT_EQ(error("batch_size", "32:64"),
            "'32:64' is a range, but batch_size takes a list of values (A,B,...)");
  EXPECT_EQ(error("batch_size", "32.5"), "'32.5' is not an integer");
  EXPECT_EQ(error("epochs", "0"), "epochs must be at least 1, got 0");
  EXPECT_EQ(error("optimizer", "adam,rmsprop"),
            "optimizer must be sgd, adam or adamw, got 'rmsprop'");
  EXPECT_EQ(error("lr", "1e-3,1e-3"), "1e-3 is listed twice in '1e-3,1e-3'");
  EXPECT_EQ(error_of([] { grid_trials({parse_search_param("lr", "1e-4:1e-2")}); }),
            "lr 0.0001:0.01 is a range: ranges need random search");
  EXPECT_EQ(error_of([] { random_trials({}, 0, 1); }),
            "random search needs at least 1 trial, got 0");
}

TrialResult result(int64_t index, double accuracy, double loss) {
  TrialResult r;
  r.index = index;
  r.val_accuracy = accuracy;
  r.val_loss = loss;
  return r;
}

TEST(SearchRanking, AccuracyThenLossThenOrder) {
  const std::vector<TrialResult> results = {result(0, 0.90, 0.3), result(1, 0.95, 0.2),
                                            result(2, NAN, NAN), result(3, 0.95, 0.1),
                                            result(4, 0.90, 0.3)};
  EXPECT_EQ(rank_trials(results), (std::vector<size_t>{3, 1, 0, 4, 2}));
}

class SearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::make_idx_set(dir_.path().string(), 200, 20, 12);
    splits_ = load_dataset(dir_.path().string(), "");
  }
  static Sequential make_model(const Recipe& r) {
    Sequential m = model_from_spec(R"({"input": [1, 12, 12], "layers": [
      {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]})");
    m.init(r.init, r.seed);
    return m;
  }
  testing::TempDir dir_;
  DatasetSplits splits_;
};

TEST_F(SearchTest, TrainsEachTrialOnTheTrainingSetLessTheValidationSplit) {
  Recipe base{.batch_size = 20, .epochs = 1, .seed = 2};
  base.validation = 0.2;
  const std::vector<Trial> trials =
      grid_trials({parse_search_param("lr", "1e-3,3e-2"), parse_search_param("epochs", "1,2")});
  int64_t seen = 0;
  std::vector<TrialResult> done = run_search(
      trials, base, make_model, splits_.train, {}, [&](const TrialResult& r, Sequential& model) {
        EXPECT_EQ(r.index, seen++);
        EXPECT_EQ(model.num_params(), 1450);
        const Dataset val = take_validation_split(splits_.train, 0.2, 2).validation;
        EXPECT_EQ(evaluate(model, val, r.recipe.preprocess).accuracy, r.val_accuracy);
      });
  ASSERT_EQ(done.size(), 4u);
  EXPECT_EQ(done[3].history.size(), 2u);
  EXPECT_EQ(done[3].recipe.lr, 3e-2f);
  EXPECT_THAT(done[1].to_json(), HasSubstr(R"("params":{"epochs":2,"lr":0.001})"));
  EXPECT_THAT(done[1].to_json(), HasSubstr(R"("trial":2,)"));
  // More steps at a higher lr learn this set better than one epoch at 1e-3.
  EXPECT_GT(done[3].val_accuracy, done[0].val_accuracy);

  base.validation = 0;
  EXPECT_EQ(error_of([&] { run_search(trials, base, make_model, splits_.train, {}); }),
            "a search ranks trials on a validation set: the recipe's validation fraction must be "
            "positive, got 0");
}

TEST_F(SearchTest, BudgetStopsStartingTrials) {
  Recipe base{.batch_size = 50, .epochs = 2};
  base.validation = 0.2;
  const std::vector<Trial> trials = grid_trials({parse_search_param("lr", "1e-3,2e-3,3e-3")});
  // Epochs: the first two trials train 4 epochs, which spends a budget of 3.
  EXPECT_EQ(run_search(trials, base, make_model, splits_.train, {.epochs = 3}).size(), 2u);
  EXPECT_EQ(run_search(trials, base, make_model, splits_.train, {.epochs = 4}).size(), 2u);
  EXPECT_EQ(run_search(trials, base, make_model, splits_.train, {.epochs = 5}).size(), 3u);
  // Time: the first trial always starts; after it a budget of a microsecond is spent.
  EXPECT_EQ(run_search(trials, base, make_model, splits_.train, {.seconds = 1e-6}).size(), 1u);
}

}  // namespace
}  // namespace scratchnet
