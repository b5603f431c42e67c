// Training is bit-identical for any thread count: the same seed gives the same weights,
// buffers and metrics with 1 thread and with 2 (and 3, which splits work unevenly).
#include <gtest/gtest.h>

#include "scratchnet/model_spec.h"
#include "scratchnet/parallel.h"
#include "scratchnet/presets.h"
#include "scratchnet/train/trainer.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::TempDir;

// Every layer kind with parameters or state, strides and paddings the presets do not use.
const char* kSpec = R"({"input": [1, 28, 28], "layers": [
  {"type": "Conv2d", "out_channels": 6, "kernel": 5, "stride": 2, "padding": 2},
  {"type": "BatchNorm2d"}, {"type": "LeakyReLU"}, {"type": "AvgPool2d", "kernel": 2},
  {"type": "Conv2d", "out_channels": 5, "kernel": 3, "padding": 1}, {"type": "Tanh"},
  {"type": "Flatten"}, {"type": "Dropout", "p": 0.25},
  {"type": "Linear", "out_features": 24}, {"type": "BatchNorm1d"}, {"type": "Sigmoid"},
  {"type": "Linear", "out_features": 10}]})";

struct TrainedState {
  std::vector<std::vector<float>> state;  // parameters then buffers
  std::vector<EpochMetrics> history;
};

class DeterminismTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    // 200 images: three full batches of 64 and a partial one of 8.
    testing::make_idx_set(dir_.path().string(), 200, 50, 28);
    splits_ = load_dataset(dir_.path().string(), "");
  }
  void TearDown() override { set_num_threads(2); }

  TrainedState train(const std::string& model, int threads) {
    set_num_threads(threads);
    bool preset = model != "spec";
    Sequential m = preset ? make_preset(model) : model_from_spec(kSpec);
    Recipe r = preset ? preset_recipe(model) : Recipe{.optimizer = "sgd", .momentum = 0.9f};
    r.epochs = 1;
    r.seed = 7;
    m.init(r.init, r.seed);
    Trainer t(m, splits_.train, &splits_.test, r);
    t.fit();
    TrainedState run;
    for (auto& p : m.params()) run.state.push_back(p.param->value.to_vector());
    for (auto& b : m.buffers()) run.state.push_back(b.tensor->to_vector());
    run.history = t.history();
    return run;
  }

  TempDir dir_;
  DatasetSplits splits_;
};

TEST_P(DeterminismTest, SameWeightsForOneTwoAndThreeThreads) {
  TrainedState one = train(GetParam(), 1);
  for (int threads : {2, 3}) {
    TrainedState other = train(GetParam(), threads);
    ASSERT_EQ(one.state.size(), other.state.size());
    for (size_t i = 0; i < one.state.size(); ++i)
      ASSERT_EQ(one.state[i], other.state[i]) << "tensor " << i << ", threads " << threads;
    ASSERT_EQ(one.history.size(), other.history.size());
    for (size_t e = 0; e < one.history.size(); ++e) {
      EXPECT_EQ(one.history[e].train_loss, other.history[e].train_loss);
      EXPECT_EQ(one.history[e].test_loss, other.history[e].test_loss);
    }
  }
}

TEST_P(DeterminismTest, TrainingChangesTheWeights) {
  // Guards the test above against comparing two runs that did nothing.
  Sequential m =
      std::string(GetParam()) == "spec" ? model_from_spec(kSpec) : make_preset(GetParam());
  m.init(Init::kPyTorch, 7);
  TrainedState run = train(GetParam(), 2);
  auto params = m.params();
  ASSERT_FALSE(params.empty());
  EXPECT_NE(params[0].param->value.to_vector(), run.state[0]);
}

INSTANTIATE_TEST_SUITE_P(Models, DeterminismTest, ::testing::Values("basic", "bn", "spec"));

}  // namespace
}  // namespace scratchnet
