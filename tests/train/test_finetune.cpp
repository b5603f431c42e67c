#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scratchnet/io/model_file.h"
#include "scratchnet/layers/batch_norm.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/train/evaluate.h"
#include "scratchnet/train/finetune.h"
#include "scratchnet/train/trainer.h"
#include "support/error.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;

// Blocks: conv 0-2, conv 3-6 (with pooling), flatten 7, linear 8-10, head 11-12.
const char* kSpec = R"({"input": [1, 12, 12], "layers": [
  {"type": "Conv2d", "out_channels": 4, "kernel": 3, "padding": 1},
  {"type": "BatchNorm2d"}, {"type": "ReLU"},
  {"type": "Conv2d", "out_channels": 4, "kernel": 3, "padding": 1},
  {"type": "BatchNorm2d"}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel": 2},
  {"type": "Flatten"},
  {"type": "Linear", "out_features": 16}, {"type": "BatchNorm1d"}, {"type": "ReLU"},
  {"type": "Linear", "out_features": 10}, {"type": "LogSoftmax"}]})";

Sequential fresh(uint64_t seed = 3) {
  Sequential m = model_from_spec(kSpec);
  m.init(Init::kPyTorch, seed);
  return m;
}

std::vector<float> values(Sequential& m, size_t layer) {
  std::vector<float> all;
  for (auto& p : m.layer(layer).params()) {
    std::vector<float> v = p.param->value.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  for (auto& b : m.layer(layer).buffers()) {
    std::vector<float> v = b.tensor->to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

std::vector<std::vector<float>> weights(Sequential& m) {
  std::vector<std::vector<float>> all;
  for (size_t i = 0; i < m.size(); ++i) all.push_back(values(m, i));
  return all;
}

TEST(Finetune, SelectorsNameIndicesRangesKindsAndGroups) {
  Sequential m = fresh();
  EXPECT_THAT(select_layers(m, {"3"}), ElementsAre(3));
  EXPECT_THAT(select_layers(m, {"2-4", "0"}), ElementsAre(0, 2, 3, 4));
  EXPECT_THAT(select_layers(m, {"conv2d"}), ElementsAre(0, 3));
  EXPECT_THAT(select_layers(m, {"BatchNorm2d", "BatchNorm1d"}), ElementsAre(1, 4, 9));
  EXPECT_THAT(select_layers(m, {"features"}), ElementsAre(0, 1, 2, 3, 4, 5, 6));
  EXPECT_THAT(select_layers(m, {"backbone"}), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  EXPECT_THAT(select_layers(m, {"features", "3", "Conv2d"}), ElementsAre(0, 1, 2, 3, 4, 5, 6));
  EXPECT_TRUE(select_layers(m, {}).empty());
  EXPECT_EQ(head_index(m), 11u);
}

TEST(Finetune, BadSelectorsAreClearErrors) {
  Sequential m = fresh();
  EXPECT_EQ(error_of([&] { select_layers(m, {"conv9"}); }),
            "freeze 'conv9': no layer is of that kind or group; give a layer index (0-12), a "
            "range A-B, a layer kind such as Conv2d, features or backbone");
  EXPECT_THAT(error_of([&] { select_layers(m, {"13"}); }),
              HasSubstr("freeze '13': the model has no layer 13;"));
  EXPECT_THAT(error_of([&] { select_layers(m, {"5-2"}); }),
              HasSubstr("the range's first layer comes after its last"));
  EXPECT_THAT(error_of([&] { select_layers(m, {"2-x"}); }),
              HasSubstr("freeze '2-x': not a range of layer indices"));
  EXPECT_THAT(error_of([&] { select_layers(m, {"3-20"}); }),
              HasSubstr("the model has no layer 20"));
  EXPECT_EQ(error_of([&] {
              select_layers(m, {"backbone", "11"});
            }),
            "freeze backbone,11: every layer with parameters would be frozen, so nothing would "
            "train");
  Sequential flat = model_from_spec(R"({"input": [4], "layers": [{"type": "ReLU"}]})");
  EXPECT_THAT(error_of([&] { head_index(flat); }),
              HasSubstr("the model has no Linear layer to serve as its classifier head"));
  EXPECT_THAT(error_of([&] { select_layers(flat, {"features"}); }),
              HasSubstr("the model has no Flatten layer"));
}

TEST(Finetune, ReplaceHeadKeepsEveryOtherLayer) {
  Sequential m = fresh();
  auto before = weights(m);
  replace_head(m, 3, Init::kPyTorch, 7);
  EXPECT_EQ(m.output_shape(m.size() - 1), Shape({3}));
  EXPECT_EQ(m.layer(11).describe(), "Linear(16, 3)");
  auto after = weights(m);
  for (size_t i = 0; i < m.size(); ++i)
    if (i != 11) {
      EXPECT_EQ(after[i], before[i]) << "layer " << i;
    }
  // The same seed draws the same head; the model runs at its new size.
  Sequential again = fresh();
  replace_head(again, 3, Init::kPyTorch, 7);
  EXPECT_EQ(values(again, 11), values(m, 11));
  Tensor x({2, 1, 12, 12});
  x.fill(0.5f);
  EXPECT_EQ(m.forward(x, Mode::kEval).shape(), Shape({2, 3}));
  EXPECT_EQ(error_of([&] { replace_head(m, 0, Init::kPyTorch, 7); }),
            "the new head needs at least 1 class, got 0");
}

TEST(Finetune, GradualUnfreezingFreesOneBlockAtATimeFromTheHead) {
  Sequential m = fresh();
  FinetuneOptions o{.freeze = {"backbone"}, .unfreeze_every = 2};
  EXPECT_THAT(frozen_layers(m, o, 0), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  EXPECT_THAT(frozen_layers(m, o, 1), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  EXPECT_THAT(frozen_layers(m, o, 2), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));  // Linear 8 block
  EXPECT_THAT(frozen_layers(m, o, 4), ElementsAre(0, 1, 2));                 // conv 3 block
  EXPECT_TRUE(frozen_layers(m, o, 6).empty());
  EXPECT_TRUE(frozen_layers(m, o, 100).empty());
  o.unfreeze_every = 0;
  EXPECT_EQ(frozen_layers(m, o, 100).size(), 11u);
}

TEST(Finetune, FrozenLayersAreNotTrainableAndTheirBatchNormKeepsItsStatistics) {
  Sequential m = fresh();
  apply_freeze(m, {0, 1, 2});
  EXPECT_FALSE(m.layer(0).params()[0].param->trainable);
  EXPECT_TRUE(m.layer(3).params()[0].param->trainable);
  auto& frozen_bn = dynamic_cast<BatchNorm&>(m.layer(1));
  EXPECT_TRUE(frozen_bn.statistics_frozen());
  EXPECT_FALSE(dynamic_cast<BatchNorm&>(m.layer(4)).statistics_frozen());

  // Training mode with frozen statistics computes what eval mode does and changes nothing.
  Tensor x({4, 1, 12, 12});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i % 7) - 2.0f;
  std::vector<float> stats = values(m, 1);
  Tensor out_train({4, 4, 12, 12}), out_eval({4, 4, 12, 12}), conv({4, 4, 12, 12});
  m.layer(0).forward(conv, x, Mode::kEval);
  frozen_bn.forward(out_train, conv, Mode::kTrain);
  EXPECT_EQ(values(m, 1), stats);
  frozen_bn.freeze_statistics(false);
  frozen_bn.forward(out_eval, conv, Mode::kEval);
  EXPECT_EQ(out_train.to_vector(), out_eval.to_vector());
  apply_freeze(m, {});
  EXPECT_TRUE(m.layer(0).params()[0].param->trainable);
  EXPECT_FALSE(frozen_bn.statistics_frozen());
}

TEST(Finetune, BackwardStopsAtTheLayerAsked) {
  Sequential m = fresh();
  Tensor x({3, 1, 12, 12});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i % 11) * 0.1f;
  const Tensor& y = m.forward(x, Mode::kTrain);
  Tensor d(y.shape());
  for (int64_t i = 0; i < d.numel(); ++i) d[i] = static_cast<float>(i % 3) - 1.0f;
  m.zero_grad();
  const Tensor& d_in = m.backward(d, 3);
  EXPECT_EQ(d_in.shape(), Shape({3, 4, 12, 12}));  // the gradient for layer 3's input
  for (auto& p : m.layer(0).params())
    for (float g : p.param->grad.to_vector()) EXPECT_EQ(g, 0.0f);
  float sum = 0;
  for (float g : m.layer(3).params()[0].param->grad.to_vector()) sum += std::abs(g);
  EXPECT_GT(sum, 0.0f);
}

class FinetuneTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::make_idx_set(dir_.path().string(), 200, 60, 12);
    splits_ = load_dataset(dir_.path().string(), "");
  }
  TempDir dir_;
  DatasetSplits splits_;
};

TEST_F(FinetuneTraining, FrozenLayersStayExactlyAsTheyWere) {
  Recipe r{.optimizer = "sgd",
           .lr = 0.05f,
           .momentum = 0.9f,
           .weight_decay = 1e-3f,
           .batch_size = 16,
           .epochs = 2,
           .seed = 2};
  r.finetune.freeze = {"features"};
  Sequential m = fresh();
  auto before = weights(m);
  Trainer t(m, splits_.train, &splits_.test, r);
  t.fit();
  auto after = weights(m);
  for (size_t i = 0; i <= 6; ++i) EXPECT_EQ(after[i], before[i]) << "frozen layer " << i;
  EXPECT_NE(after[8], before[8]);
  EXPECT_NE(after[9], before[9]);  // BatchNorm1d after Flatten trains, statistics included
  EXPECT_NE(after[11], before[11]);
  EXPECT_GT(t.history().back().test_accuracy, 0.5);
}

TEST_F(FinetuneTraining, TheBackboneHasItsOwnLrThatTheScheduleScales) {
  Recipe r{.optimizer = "sgd", .lr = 0.1f, .batch_size = 50, .epochs = 3, .seed = 2};
  r.schedule = {.kind = "step", .gamma = 0.5, .step_size = 1};
  r.finetune.backbone_lr = 0.01f;
  Sequential m = fresh();
  Trainer t(m, splits_.train, &splits_.test, r);
  std::vector<std::pair<float, float>> lrs;
  t.fit({.on_step = [&](const StepInfo& s) {
    if (s.step == 1) lrs.emplace_back(t.optimizer().lr(0), t.optimizer().lr(1));
  }});
  ASSERT_EQ(t.optimizer().num_groups(), 2u);
  EXPECT_THAT(lrs, ElementsAre(std::pair{0.01f, 0.1f}, std::pair{0.005f, 0.05f},
                               std::pair{0.0025f, 0.025f}));
  EXPECT_DOUBLE_EQ(t.history()[1].lr, 0.05);  // the head's
}

TEST_F(FinetuneTraining, ResumingWhileUnfreezingIsBitIdentical) {
  for (const char* optimizer : {"adam", "sgd"}) {
    Recipe r{.optimizer = optimizer, .lr = 1e-2f, .batch_size = 32, .epochs = 4, .seed = 5};
    if (r.optimizer == "sgd") r.momentum = 0.9f;
    r.schedule = {.kind = "cosine"};
    r.finetune = {.freeze = {"backbone"}, .backbone_lr = 3e-3f, .unfreeze_every = 1};
    Sequential straight = fresh();
    Trainer(straight, splits_.train, &splits_.test, r).fit();

    Sequential first = fresh();
    Trainer a(first, splits_.train, &splits_.test, r);
    a.fit({}, 2);
    a.save_checkpoint(dir_ / "ckpt.safetensors", {.class_names = splits_.train.class_names});
    Sequential resumed = load_model(dir_ / "ckpt.safetensors").model;
    Trainer b(resumed, splits_.train, &splits_.test, r);
    b.load_checkpoint(dir_ / "ckpt.safetensors");
    b.fit();
    EXPECT_EQ(weights(resumed), weights(straight)) << optimizer;
  }
}

TEST(FinetuneRecipe, RoundTripsThroughJsonAndOldRecipesHaveNone) {
  Recipe r;
  r.finetune = {.freeze = {"features", "8"}, .backbone_lr = 1e-4f, .unfreeze_every = 2};
  Recipe back = recipe_from_json(recipe_to_json(r), "test");
  EXPECT_EQ(back.finetune.freeze, r.finetune.freeze);
  EXPECT_EQ(back.finetune.backbone_lr, r.finetune.backbone_lr);
  EXPECT_EQ(back.finetune.unfreeze_every, 2);
  EXPECT_THAT(recipe_to_json(Recipe{}), Not(HasSubstr("finetune")));
  EXPECT_FALSE(recipe_from_json(recipe_to_json(Recipe{}), "test").finetune.active());
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"finetune": {"freez": []}})", "m.json"); }),
            "m.json: unknown field 'finetune.freez'");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"finetune": {"backbone_lr": -1}})", "m.json"); }),
            "m.json: finetune.backbone_lr must be positive, got -1");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"finetune": {"unfreeze_every": 2}})", "m.json"); }),
            "m.json: finetune.unfreeze_every needs frozen layers (finetune.freeze)");
}

}  // namespace
}  // namespace scratchnet
