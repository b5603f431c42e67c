#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
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
using ::testing::Not;
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

// ---- regularisation, validation, early stopping ----

// One SGD step on the whole set from the same weights, with and without L1: the Conv2d and
// Linear weights differ by lr * l1 * sign(w), every other tensor not at all, and the loss by
// the penalty.
TEST_F(TrainerTest, L1MovesOnlyConvAndLinearWeights) {
  Recipe r{.optimizer = "sgd", .lr = 0.1f, .batch_size = 300, .epochs = 1, .seed = 4};
  Sequential plain = fresh(r), penalised = fresh(r);
  std::vector<std::vector<float>> start = weights(plain);
  Trainer a(plain, splits_.train, nullptr, r);
  a.fit();
  Recipe l1 = r;
  l1.l1 = 0.01f;
  Trainer b(penalised, splits_.train, nullptr, l1);
  b.fit();
  auto pa = plain.params(), pb = penalised.params();
  double sum_abs = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    const std::vector<float> x = pa[i].param->value.to_vector(), y = pb[i].param->value.to_vector();
    if (pa[i].name != "0.weight" && pa[i].name != "6.weight") {
      EXPECT_EQ(x, y) << pa[i].name;
      continue;
    }
    for (size_t k = 0; k < x.size(); ++k) {
      const float w = start[i][k];
      sum_abs += std::fabs(w);
      EXPECT_NEAR(y[k],
                  x[k] - 0.1f * 0.01f *
                             (w > 0   ? 1.0f
                              : w < 0 ? -1.0f
                                      : 0.0f),
                  1e-6)
          << pa[i].name << " " << k;
    }
  }
  EXPECT_EQ(weights(plain).back(), weights(penalised).back());  // BatchNorm buffers
  EXPECT_NEAR(b.history()[0].train_loss - a.history()[0].train_loss, 0.01 * sum_abs, 1e-5);
}

TEST_F(TrainerTest, ValidationSetIsHeldOutAndEvaluated) {
  Recipe r{.batch_size = 32, .epochs = 2, .seed = 6};
  r.validation = 0.2;
  Sequential m = fresh(r);
  Trainer t(m, splits_.train, &splits_.test, r);
  const ValidationSplit want = take_validation_split(splits_.train, 0.2, 6);
  EXPECT_EQ(t.held_out(), want.held_out);
  ASSERT_NE(t.validation_set(), nullptr);
  EXPECT_EQ(t.validation_set()->size() + t.train_set().size(), 300);
  EXPECT_EQ(t.train_set().labels, want.train.labels);
  int64_t steps = 0;
  t.fit({.on_step = [&](const StepInfo& s) { steps = s.steps; }});
  EXPECT_EQ(steps, (t.train_set().size() + 31) / 32);
  const EvalResult val = evaluate(m, *t.validation_set(), r.preprocess);
  EXPECT_EQ(t.history().back().val_accuracy, val.accuracy);
  EXPECT_EQ(t.history().back().val_loss, val.loss);
  EXPECT_THAT(t.history().back().to_json(), HasSubstr(R"("val_accuracy":)"));
  ASSERT_NE(t.best(), nullptr);
  EXPECT_FALSE(t.stopped_early());  // no early stopping: the best is only tracked

  Recipe plain{.batch_size = 32, .epochs = 1};
  Sequential m2 = fresh(plain);
  Trainer u(m2, splits_.train, &splits_.test, plain);
  u.fit();
  EXPECT_EQ(u.best(), nullptr);
  EXPECT_TRUE(std::isnan(u.history()[0].val_accuracy));
  EXPECT_THAT(u.history()[0].to_json(), Not(HasSubstr("val_")));
}

// A min_delta no loss can beat: epoch 1 is the best, epochs 2 and 3 are bad, and patience 2
// ends the run after epoch 3 of 8.
Recipe early_stop_recipe() {
  Recipe r{.optimizer = "adam", .lr = 3e-3f, .batch_size = 32, .epochs = 8, .seed = 11};
  r.validation = 0.25;
  r.early_stop = {.patience = 2, .monitor = "val_loss", .min_delta = 100};
  return r;
}

TEST_F(TrainerTest, EarlyStoppingStopsAtTheExpectedEpoch) {
  Recipe r = early_stop_recipe();
  Sequential m = fresh(r);
  Trainer t(m, splits_.train, &splits_.test, r);
  t.fit();
  EXPECT_EQ(t.epochs_done(), 3);
  EXPECT_TRUE(t.stopped_early());
  EXPECT_EQ(t.best()->best_epoch(), 1);
  EXPECT_EQ(t.best()->best(), t.history()[0].val_loss);
  t.fit();  // a stopped run stays stopped
  EXPECT_EQ(t.epochs_done(), 3);

  // Without the impossible min_delta the best epoch is the one with the lowest val_loss.
  r.early_stop = {.patience = 8};
  r.epochs = 4;
  Sequential m2 = fresh(r);
  Trainer u(m2, splits_.train, &splits_.test, r);
  std::vector<std::vector<float>> best_weights;
  u.fit({.on_epoch = [&](const EpochMetrics& e) {
    if (u.best()->best_epoch() == e.epoch) best_weights = weights(m2);
  }});
  EXPECT_FALSE(u.stopped_early());
  const auto lowest = std::min_element(
      u.history().begin(), u.history().end(),
      [](const EpochMetrics& a, const EpochMetrics& b) { return a.val_loss < b.val_loss; });
  EXPECT_EQ(u.best()->best_epoch(), lowest->epoch);
  // What the callback kept evaluates to the best epoch's validation metrics.
  Sequential kept = fresh(r);
  auto params = kept.params();
  auto buffers = kept.buffers();
  for (size_t i = 0; i < params.size(); ++i)
    params[i].param->value = Tensor(params[i].param->value.shape(), best_weights[i]);
  for (size_t i = 0; i < buffers.size(); ++i)
    *buffers[i].tensor = Tensor(buffers[i].tensor->shape(), best_weights[params.size() + i]);
  EXPECT_EQ(evaluate(kept, *u.validation_set(), r.preprocess).loss, lowest->val_loss);
}

TEST_F(TrainerTest, ResumingWithEarlyStoppingStopsAtTheSameEpoch) {
  // The validation accuracy reaches 100% and cannot improve on it: two epochs later it stops.
  Recipe r = early_stop_recipe();
  r.epochs = 12;
  r.early_stop = {.patience = 2, .monitor = "val_accuracy"};
  Sequential straight = fresh(r);
  Trainer whole(straight, splits_.train, &splits_.test, r);
  whole.fit();
  ASSERT_TRUE(whole.stopped_early());
  ASSERT_GT(whole.epochs_done(), 3);
  EXPECT_LT(whole.epochs_done(), 12);
  EXPECT_EQ(whole.history()[whole.best()->best_epoch() - 1].val_accuracy, 1.0);

  Sequential first = fresh(r);
  Trainer a(first, splits_.train, &splits_.test, r);
  a.fit({}, 3);
  a.save_checkpoint(dir_ / "ckpt.safetensors", {.class_names = splits_.train.class_names});
  Sequential resumed = load_model(dir_ / "ckpt.safetensors").model;
  Trainer b(resumed, splits_.train, &splits_.test, r);
  b.load_checkpoint(dir_ / "ckpt.safetensors");
  b.fit();
  EXPECT_TRUE(b.stopped_early());
  EXPECT_EQ(b.epochs_done(), whole.epochs_done());
  EXPECT_EQ(b.best()->state_to_json(), whole.best()->state_to_json());
  EXPECT_EQ(weights(resumed), weights(straight));

  // A checkpoint of a stopped run stays stopped.
  b.save_checkpoint(dir_ / "stopped.safetensors", {});
  Sequential again = load_model(dir_ / "stopped.safetensors").model;
  Trainer c(again, splits_.train, &splits_.test, r);
  c.load_checkpoint(dir_ / "stopped.safetensors");
  EXPECT_TRUE(c.stopped_early());

  // Another held-out set is refused.
  Recipe other = r;
  other.validation = 0.3;
  Sequential m3 = fresh(other);
  Trainer d(m3, splits_.train, &splits_.test, other);
  EXPECT_EQ(error_of([&] { d.load_checkpoint(dir_ / "ckpt.safetensors"); }),
            dir_ / "ckpt.safetensors" +
                ": the checkpoint held out other validation images than this run: the training "
                "set, the validation fraction or the seed differ");
  Recipe none = r;
  none.validation = 0;
  none.early_stop = {};
  Sequential m4 = fresh(none);
  Trainer e(m4, splits_.train, &splits_.test, none);
  EXPECT_EQ(error_of([&] { e.load_checkpoint(dir_ / "ckpt.safetensors"); }),
            dir_ / "ckpt.safetensors" +
                ": the checkpoint was trained with a validation set or early stopping, this run "
                "has neither");
}

TEST_F(TrainerTest, PlateauCanFollowTheValidationLoss) {
  Recipe r = plateau_recipe();
  r.validation = 0.2;
  r.schedule.monitor = "val_loss";
  Sequential m = fresh(r);
  Trainer t(m, splits_.train, nullptr, r);
  t.fit();
  std::vector<double> lr;
  for (const EpochMetrics& e : t.history()) lr.push_back(e.lr);
  EXPECT_EQ(lr, (std::vector<double>{0.05, 0.05, 0.025, 0.025, 0.0125}));
}

TEST_F(TrainerTest, MonitorsNeedTheirSets) {
  Recipe r{.batch_size = 32, .epochs = 2};
  r.early_stop = {.patience = 2, .monitor = "test_loss"};
  Sequential m = fresh(r);
  EXPECT_EQ(error_of([&] { Trainer t(m, splits_.train, nullptr, r); }),
            "early stopping monitors test_loss, but there is no test set");
  r.early_stop.monitor = "val_loss";
  EXPECT_EQ(error_of([&] { Trainer t(m, splits_.train, &splits_.test, r); }),
            "early_stop.monitor is val_loss, but validation is 0: hold out a validation set or "
            "monitor a test metric");
}

}  // namespace
}  // namespace scratchnet
