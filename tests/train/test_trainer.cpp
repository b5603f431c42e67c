#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "scratchnet/model_spec.h"
#include "scratchnet/train/evaluate.h"
#include "scratchnet/train/trainer.h"
#include "support/error.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
using testing::TempDir;

// A small CNN with every kind of state a checkpoint must carry: BatchNorm buffers, dropout
// streams, optimiser moments.
const char* kSpec = R"({"input": [1, 12, 12], "layers": [
  {"type": "Conv2d", "out_channels": 4, "kernel": 3, "padding": 1},
  {"type": "BatchNorm2d"}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
  {"type": "Flatten"}, {"type": "Dropout", "p": 0.2},
  {"type": "Linear", "out_features": 10}]})";

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::make_idx_set(dir_.path().string(), 300, 100, 12);
    splits_ = load_dataset(dir_.path().string(), "");
  }
  Sequential fresh(const Recipe& r) {
    Sequential m = model_from_spec(kSpec);
    m.init(r.init, r.seed);
    return m;
  }
  TempDir dir_;
  DatasetSplits splits_;
};

std::vector<std::vector<float>> weights(Sequential& m) {
  std::vector<std::vector<float>> all;
  for (auto& p : m.params()) all.push_back(p.param->value.to_vector());
  for (auto& b : m.buffers()) all.push_back(b.tensor->to_vector());
  return all;
}

TEST_F(TrainerTest, LearnsTheToySet) {
  Recipe r{.optimizer = "adam", .lr = 3e-3f, .batch_size = 16, .epochs = 3, .seed = 4};
  Sequential m = fresh(r);
  double before = evaluate(m, splits_.test, r.preprocess).accuracy;
  Trainer t(m, splits_.train, &splits_.test, r);
  int steps = 0;
  t.fit({.on_step = [&](const StepInfo& s) {
    ++steps;
    EXPECT_EQ(s.steps, 19);
    EXPECT_GT(s.images_per_second, 0);
  }});
  EXPECT_EQ(steps, 3 * 19);
  ASSERT_EQ(t.history().size(), 3u);
  EXPECT_LT(t.history()[2].train_loss, t.history()[0].train_loss);
  EXPECT_LT(before, 0.3);
  EXPECT_GT(t.history()[2].test_accuracy, 0.9);
}

TEST_F(TrainerTest, ResumingFromACheckpointIsBitIdentical) {
  for (const char* optimizer : {"adam", "sgd"}) {
    Recipe r{.optimizer = optimizer, .lr = 1e-2f, .batch_size = 32, .epochs = 4, .seed = 9};
    if (r.optimizer == "sgd") r.momentum = 0.9f;
    Sequential straight = fresh(r);
    Trainer(straight, splits_.train, &splits_.test, r).fit();

    Sequential first = fresh(r);
    Trainer a(first, splits_.train, &splits_.test, r);
    a.fit({}, 2);
    a.save_checkpoint(dir_ / "ckpt.safetensors", {.class_names = splits_.train.class_names});

    // A new model and trainer, as a new process would build them.
    Sequential resumed = load_model(dir_ / "ckpt.safetensors").model;
    Trainer b(resumed, splits_.train, &splits_.test, r);
    b.load_checkpoint(dir_ / "ckpt.safetensors");
    EXPECT_EQ(b.epochs_done(), 2);
    b.fit();
    EXPECT_EQ(b.history().size(), 4u);
    EXPECT_EQ(weights(resumed), weights(straight)) << optimizer;
  }
}

TEST_F(TrainerTest, CheckpointOfAnotherArchitectureIsRejected) {
  Recipe r{.batch_size = 32, .epochs = 1};
  Sequential m = fresh(r);
  Trainer t(m, splits_.train, nullptr, r);
  t.fit();
  t.save_checkpoint(dir_ / "c.safetensors", {});
  Sequential other = model_from_spec(R"({"input": [1, 12, 12], "layers": [
    {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]})");
  Trainer u(other, splits_.train, nullptr, r);
  EXPECT_THAT(error_of([&] { u.load_checkpoint(dir_ / "c.safetensors"); }),
              HasSubstr("c.safetensors: the checkpoint's architecture differs"));
}

TEST_F(TrainerTest, AModelFileIsNotACheckpoint) {
  Recipe r{.batch_size = 32, .epochs = 1};
  Sequential m = fresh(r);
  save_model(dir_ / "model.safetensors", m, {});
  Trainer t(m, splits_.train, nullptr, r);
  EXPECT_THAT(error_of([&] { t.load_checkpoint(dir_ / "model.safetensors"); }),
              HasSubstr("model.safetensors: not a checkpoint (no training state)"));
}

TEST_F(TrainerTest, ImagesThatDoNotFitTheModel) {
  Recipe r;
  Sequential m = model_from_spec(R"({"input": [1, 28, 28], "layers": [{"type": "Flatten"},
    {"type": "Linear", "out_features": 10}]})");
  EXPECT_THAT(error_of([&] { Trainer t(m, splits_.train, nullptr, r); }),
              HasSubstr("images of shape (1, 12, 12) do not fit a model built for (1, 28, 28)"));
}

TEST_F(TrainerTest, EvaluateCountsAndConfusion) {
  Recipe r;
  Sequential m = fresh(r);
  EvalResult e = evaluate(m, splits_.test, r.preprocess, 7);
  EXPECT_EQ(e.count, 100);
  int64_t total = 0;
  for (int64_t v : e.confusion) total += v;
  EXPECT_EQ(total, 100);
  EXPECT_NEAR(e.accuracy, static_cast<double>(e.correct()) / 100, 1e-12);
  EXPECT_THAT(e.to_json(splits_.test.class_names), HasSubstr("\"confusion\":[["));
}

}  // namespace
}  // namespace scratchnet
