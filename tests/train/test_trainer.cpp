#include <fmt/format.h>
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

// ---- learning-rate schedules ----

// The lr each step and each epoch used, as the trainer reports them.
struct LrLog {
  std::vector<double> steps, epochs;
  TrainCallbacks callbacks() {
    return {.on_step = [this](const StepInfo& s) { steps.push_back(s.lr); },
            .on_epoch = [this](const EpochMetrics& m) { epochs.push_back(m.lr); }};
  }
};

TEST_F(TrainerTest, PerEpochScheduleSetsEachEpochsLr) {
  Recipe r{.optimizer = "sgd", .lr = 0.01f, .batch_size = 32, .epochs = 3, .seed = 2};
  r.schedule = {.kind = "step", .gamma = 0.5, .step_size = 1};
  Sequential m = fresh(r);
  Trainer t(m, splits_.train, &splits_.test, r);
  LrLog log;
  t.fit(log.callbacks());
  EXPECT_EQ(log.epochs, (std::vector<double>{0.01, 0.005, 0.0025}));
  ASSERT_EQ(log.steps.size(), 3u * 10);
  for (size_t i = 0; i < log.steps.size(); ++i) EXPECT_EQ(log.steps[i], log.epochs[i / 10]) << i;
  EXPECT_EQ(t.history()[2].lr, 0.0025);
  EXPECT_EQ(t.schedule()->ticks(), 3);
  EXPECT_EQ(t.schedule()->lr(), 0.00125);  // for a fourth epoch
}

// A per-step schedule changes the lr every batch; an epoch records its last step's lr.
TEST_F(TrainerTest, PerStepScheduleSetsEachStepsLr) {
  Recipe r{.optimizer = "adam", .lr = 2e-3f, .batch_size = 64, .epochs = 3, .seed = 3};
  r.schedule = {.kind = "cosine", .unit = "step", .warmup = 4, .min_lr = 1e-5};
  Sequential m = fresh(r);
  Trainer t(m, splits_.train, &splits_.test, r);
  LrLog log;
  t.fit(log.callbacks());
  LrSchedule want(r.schedule, 2e-3, 3, 5);  // 300 images in batches of 64: 5 steps
  ASSERT_EQ(log.steps.size(), 15u);
  for (size_t i = 0; i < 15; ++i, want.step())
    EXPECT_EQ(log.steps[i], Optimizer::widen(static_cast<float>(want.lr()))) << i;
  EXPECT_LT(log.steps[0], log.steps[4]);   // warm-up
  EXPECT_GT(log.steps[4], log.steps[14]);  // annealing
  EXPECT_EQ(log.epochs, (std::vector<double>{log.steps[4], log.steps[9], log.steps[14]}));
}

// A plateau schedule that can never see an improvement of 10 in the test loss: the first
// epoch sets the best, each later one is bad, patience 0 cuts the lr after it, and a cooldown
// of 1 skips every other cut.
Recipe plateau_recipe() {
  Recipe r{
      .optimizer = "sgd", .lr = 0.05f, .momentum = 0.9f, .batch_size = 32, .epochs = 5, .seed = 5};
  r.schedule = {.kind = "plateau",
                .factor = 0.5,
                .patience = 0,
                .threshold = 10,
                .threshold_mode = "abs",
                .cooldown = 1};
  return r;
}

TEST_F(TrainerTest, PlateauFollowsTheTestLoss) {
  Recipe r = plateau_recipe();
  Sequential m = fresh(r);
  Trainer t(m, splits_.train, &splits_.test, r);
  t.fit();
  std::vector<double> lr, replayed;
  LrSchedule replay(r.schedule, 0.05, 5, 1);
  for (const EpochMetrics& e : t.history()) {
    lr.push_back(e.lr);
    replayed.push_back(Optimizer::widen(static_cast<float>(replay.lr())));
    replay.step(e.test_loss);
  }
  EXPECT_EQ(lr, (std::vector<double>{0.05, 0.05, 0.025, 0.025, 0.0125}));
  EXPECT_EQ(lr, replayed);
}

TEST_F(TrainerTest, ResumingWithAScheduleIsBitIdentical) {
  Recipe onecycle{.optimizer = "adam", .lr = 1e-3f, .batch_size = 32, .epochs = 4, .seed = 7};
  onecycle.schedule = {.kind = "onecycle", .max_lr = 0.01, .three_phase = true};
  Recipe cosine{
      .optimizer = "sgd", .lr = 0.02f, .momentum = 0.9f, .batch_size = 48, .epochs = 4, .seed = 8};
  cosine.schedule = {.kind = "cosine", .unit = "step", .warmup = 5, .min_lr = 1e-4};
  Recipe plateau = plateau_recipe();
  plateau.epochs = 4;
  for (const Recipe& r : {onecycle, cosine, plateau}) {
    const std::string kind = r.schedule.kind;
    Sequential straight = fresh(r);
    Trainer whole(straight, splits_.train, &splits_.test, r);
    whole.fit();

    Sequential first = fresh(r);
    Trainer a(first, splits_.train, &splits_.test, r);
    a.fit({}, 2);
    a.save_checkpoint(dir_ / "ckpt.safetensors", {.class_names = splits_.train.class_names});

    Sequential resumed = load_model(dir_ / "ckpt.safetensors").model;
    Trainer b(resumed, splits_.train, &splits_.test, r);
    b.load_checkpoint(dir_ / "ckpt.safetensors");
    EXPECT_EQ(b.schedule()->state_to_json(), a.schedule()->state_to_json()) << kind;
    b.fit();
    EXPECT_EQ(weights(resumed), weights(straight)) << kind;
    ASSERT_EQ(b.history().size(), 4u) << kind;
    for (size_t e = 0; e < 4; ++e) EXPECT_EQ(b.history()[e].lr, whole.history()[e].lr) << kind;
    EXPECT_NE(whole.history()[0].lr, whole.history()[3].lr) << kind;  // the schedule acted
    EXPECT_EQ(b.schedule()->state_to_json(), whole.schedule()->state_to_json()) << kind;
  }
}

TEST_F(TrainerTest, CheckpointMustMatchTheSchedule) {
  Recipe r{.batch_size = 32, .epochs = 4};
  r.schedule = {.kind = "cosine"};
  Sequential m = fresh(r);
  Trainer t(m, splits_.train, nullptr, r);
  t.fit({}, 1);
  t.save_checkpoint(dir_ / "c.safetensors", {});

  Recipe longer = r;
  longer.epochs = 6;
  Sequential m2 = fresh(longer);
  Trainer u(m2, splits_.train, nullptr, longer);
  EXPECT_EQ(error_of([&] { u.load_checkpoint(dir_ / "c.safetensors"); }),
            dir_ / "c.safetensors" +
                ": the saved cosine schedule spans 4 epochs, this run 6 epochs: the length of a "
                "cosine or onecycle run cannot change");

  Recipe none = r;
  none.schedule = {};
  Sequential m3 = fresh(none);
  Trainer v(m3, splits_.train, nullptr, none);
  EXPECT_THAT(error_of([&] { v.load_checkpoint(dir_ / "c.safetensors"); }),
              HasSubstr("c.safetensors: the checkpoint was trained with a learning-rate "
                        "schedule, this run has none"));
  v.fit({}, 1);
  v.save_checkpoint(dir_ / "plain.safetensors", {});
  Sequential m4 = fresh(r);
  Trainer w(m4, splits_.train, nullptr, r);
  EXPECT_THAT(error_of([&] { w.load_checkpoint(dir_ / "plain.safetensors"); }),
              HasSubstr("plain.safetensors: the checkpoint was trained without a learning-rate "
                        "schedule, this run has a cosine schedule"));
}

TEST_F(TrainerTest, ScheduleTheTrainerCannotRun) {
  Recipe r{.batch_size = 32, .epochs = 2};
  r.schedule = {.kind = "plateau"};
  Sequential m = fresh(r);
  EXPECT_EQ(error_of([&] { Trainer t(m, splits_.train, nullptr, r); }),
            "the plateau schedule monitors test_loss, but there is no test set");
  r.schedule.monitor = "train_loss";
  EXPECT_EQ(error_of([&] { Trainer t(m, splits_.train, nullptr, r); }), "(no error)");
  r.schedule = {.kind = "onecycle", .max_lr = 0.01, .cycle_momentum = true};
  EXPECT_EQ(error_of([&] { Trainer t(m, splits_.train, nullptr, r); }),
            "schedule.cycle_momentum is not supported by the trainer: the optimisers cannot "
            "change momentum during a run");
  r.schedule = {.kind = "cosine", .warmup = 2};
  EXPECT_EQ(error_of([&] { Trainer t(m, splits_.train, nullptr, r); }),
            "schedule.warmup of 2 epochs leaves no epoch to anneal in a run of 2 epochs");
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

TEST_F(TrainerTest, EvaluateGivesEachPredictionsProbability) {
  // Zero weights and bias ln(9) for class 3: every image's output is (0, 0, 0, ln 9, 0, ...), so
  // class 3 has probability 9 / (9 + 9) = 0.5 — whether the model ends in logits, Softmax or
  // LogSoftmax.
  for (const char* last : {"", R"(, {"type": "Softmax"})", R"(, {"type": "LogSoftmax"})"}) {
    Sequential m = model_from_spec(fmt::format(
        R"({{"input": [1, 12, 12], "layers": [{{"type": "Flatten"}},
        {{"type": "Linear", "out_features": 10}}{}]}})",
        last));
    auto params = m.params();
    params[0].param->value.zero();
    params[1].param->value.zero();
    params[1].param->value[3] = std::log(9.0f);
    EvalResult e = evaluate(m, splits_.test, {}, 32);
    ASSERT_EQ(e.confidence.size(), 100u) << last;
    for (int64_t i = 0; i < 100; ++i) {
      EXPECT_EQ(e.predicted[i], 3) << last;
      EXPECT_NEAR(e.confidence[i], 0.5f, 1e-6f) << last;
    }
  }
}

TEST_F(TrainerTest, KeepsTheLastTestEvaluation) {
  Recipe r{.batch_size = 32, .epochs = 2};
  Sequential m = fresh(r);
  Trainer t(m, splits_.train, &splits_.test, r);
  EXPECT_EQ(t.last_test().count, 0);
  t.fit({}, 1);
  EXPECT_EQ(t.last_test().count, 100);
  EXPECT_EQ(t.last_test().accuracy, t.history().back().test_accuracy);
  EXPECT_EQ(t.last_test().loss, t.history().back().test_loss);
  const EvalResult again = evaluate(m, splits_.test, r.preprocess);
  EXPECT_EQ(t.last_test().predicted, again.predicted);
  EXPECT_EQ(t.last_test().confidence, again.confidence);
  EXPECT_EQ(t.last_test().confusion, again.confusion);

  Trainer without(m, splits_.train, nullptr, r);
  without.fit({}, 1);
  EXPECT_EQ(without.last_test().count, 0);
}

}  // namespace
}  // namespace scratchnet
