#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "scratchnet/model_spec.h"
#include "scratchnet/train/evaluate.h"
#include "scratchnet/train/prune.h"
#include "scratchnet/train/trainer.h"
#include "support/error.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

// 0.weight (2, 1, 3, 3): 18 weights; 4.weight (3, 32): 96 weights; biases and BatchNorm besides.
const char* kSpec = R"({"input": [1, 6, 6], "layers": [
  {"type": "Conv2d", "out_channels": 2, "kernel": 3}, {"type": "BatchNorm2d"},
  {"type": "ReLU"}, {"type": "Flatten"}, {"type": "Linear", "out_features": 3}]})";

Tensor& weight(Sequential& m, size_t layer) { return m.layer(layer).params()[0].param->value; }

// Magnitudes known by position, signs alternating: the conv's are 1 + (17 - i) / 100 (so the
// last index is the smallest, and all of them are above every Linear weight), the Linear's are
// (i + 1) / 1000 (the first index is the smallest). Biases and BatchNorm get values too.
Sequential known_model() {
  Sequential m = model_from_spec(kSpec);
  m.init(Init::kPyTorch, 1);
  Tensor& conv = weight(m, 0);
  for (int64_t i = 0; i < 18; ++i) conv[i] = (i % 2 ? -1.0f : 1.0f) * (1.0f + (17 - i) / 100.0f);
  Tensor& linear = weight(m, 4);
  for (int64_t i = 0; i < 96; ++i) linear[i] = (i % 2 ? -1.0f : 1.0f) * (i + 1) / 1000.0f;
  for (auto& b : m.buffers()) b.tensor->fill(0.25f);
  return m;
}

std::vector<std::vector<float>> everything(Sequential& m) {
  std::vector<std::vector<float>> all;
  for (auto& p : m.params()) all.push_back(p.param->value.to_vector());
  for (auto& b : m.buffers()) all.push_back(b.tensor->to_vector());
  return all;
}

// Indices of the zeros of a tensor.
std::vector<int64_t> zeros_of(const Tensor& t) {
  std::vector<int64_t> z;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (t[i] == 0.0f) z.push_back(i);
  return z;
}

std::vector<int64_t> range(int64_t first, int64_t last) {  // [first, last)
  std::vector<int64_t> r;
  for (int64_t i = first; i < last; ++i) r.push_back(i);
  return r;
}

TEST(Prune, PrunableWeightsAreConvAndLinearWeightsOnly) {
  Sequential m = known_model();
  std::vector<std::string> names;
  for (const auto& p : prunable_weights(m)) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "4.weight"}));
}

TEST(Prune, PerLayerRemovesTheSmallestHalfOfEachLayer) {
  Sequential m = known_model();
  Sequential before = known_model();
  auto masks = prune_by_magnitude(m, {.sparsity = 0.5, .scope = PruneScope::kLayer});
  ASSERT_EQ(masks.size(), 2u);
  EXPECT_EQ(masks[0].name, "0.weight");
  EXPECT_EQ(masks[0].pruned(), 9);
  EXPECT_EQ(masks[1].pruned(), 48);
  EXPECT_EQ(zeros_of(weight(m, 0)), range(9, 18));  // the conv's smallest are its last
  EXPECT_EQ(zeros_of(weight(m, 4)), range(0, 48));  // the Linear's its first
  for (int64_t i = 0; i < 9; ++i) EXPECT_EQ(weight(m, 0)[i], weight(before, 0)[i]) << i;
  for (int64_t i = 48; i < 96; ++i) EXPECT_EQ(weight(m, 4)[i], weight(before, 4)[i]) << i;
  for (int64_t i = 0; i < 18; ++i) EXPECT_EQ(masks[0].keep[i], i < 9 ? 1.0f : 0.0f) << i;
}

TEST(Prune, BiasesAndBatchNormAreUntouched) {
  Sequential m = known_model();
  Sequential before = known_model();
  prune_by_magnitude(m, {.sparsity = 0.9, .scope = PruneScope::kGlobal});
  auto params = m.params(), original = before.params();
  ASSERT_EQ(params.size(), original.size());
  int weights_changed = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    bool same = params[i].param->value.to_vector() == original[i].param->value.to_vector();
    if (params[i].name == "0.weight" || params[i].name == "4.weight")
      weights_changed += !same;
    else
      EXPECT_TRUE(same) << params[i].name;  // 0.bias, 1.weight, 1.bias (BN), 4.bias
  }
  EXPECT_EQ(weights_changed, 2);
  auto buffers = m.buffers(), original_buffers = before.buffers();
  for (size_t i = 0; i < buffers.size(); ++i)
    EXPECT_EQ(buffers[i].tensor->to_vector(), original_buffers[i].tensor->to_vector());
}

// 114 weights; all 96 Linear weights are smaller than every conv weight.
TEST(Prune, GlobalUsesOneThresholdOverAllLayers) {
  Sequential m = known_model();
  auto masks = prune_by_magnitude(m, {.sparsity = 0.5, .scope = PruneScope::kGlobal});
  EXPECT_EQ(masks[0].pruned(), 0);  // round(0.5 * 114) = 57, all from the Linear layer
  EXPECT_EQ(masks[1].pruned(), 57);
  EXPECT_EQ(zeros_of(weight(m, 4)), range(0, 57));

  Sequential n = known_model();
  masks = prune_by_magnitude(n, {.sparsity = 0.9, .scope = PruneScope::kGlobal});
  // round(0.9 * 114) = round(102.6) = 103: the whole Linear weight and the conv's 7 smallest.
  EXPECT_EQ(masks[1].pruned(), 96);
  EXPECT_EQ(masks[0].pruned(), 7);
  EXPECT_EQ(zeros_of(weight(n, 0)), range(11, 18));
  EXPECT_EQ(sparsity_report(n).zeros, 103);
}

// round(s * n) rounds half to even, as PyTorch's prune (Python's round) does.
TEST(Prune, CountsRoundHalfToEven) {
  Sequential m = known_model();
  auto masks = prune_by_magnitude(m, {.sparsity = 0.25});  // 4.5 -> 4 and 24 -> 24
  EXPECT_EQ(masks[0].pruned(), 4);
  EXPECT_EQ(masks[1].pruned(), 24);
  Sequential n = known_model();
  masks = prune_by_magnitude(n, {.sparsity = 0.75});  // 13.5 -> 14 and 72
  EXPECT_EQ(masks[0].pruned(), 14);
  EXPECT_EQ(masks[1].pruned(), 72);
}

TEST(Prune, TiesGoToTheEarlierWeight) {
  Sequential m = known_model();
  for (int64_t i = 0; i < 18; ++i) weight(m, 0)[i] = i % 2 ? -0.5f : 0.5f;
  for (int64_t i = 0; i < 96; ++i) weight(m, 4)[i] = 0.5f;
  prune_by_magnitude(m, {.sparsity = 0.5});
  EXPECT_EQ(zeros_of(weight(m, 0)), range(0, 9));
  EXPECT_EQ(zeros_of(weight(m, 4)), range(0, 48));

  Sequential g = known_model();
  for (int64_t i = 0; i < 18; ++i) weight(g, 0)[i] = 0.5f;
  for (int64_t i = 0; i < 96; ++i) weight(g, 4)[i] = -0.5f;
  prune_by_magnitude(g, {.sparsity = 0.25, .scope = PruneScope::kGlobal});  // 28.5 -> 28
  EXPECT_EQ(zeros_of(weight(g, 0)), range(0, 18));  // the earlier layer first
  EXPECT_EQ(zeros_of(weight(g, 4)), range(0, 10));
}

TEST(Prune, ZeroSparsityChangesNothing) {
  for (PruneScope scope : {PruneScope::kLayer, PruneScope::kGlobal}) {
    Sequential m = known_model();
    Sequential before = known_model();
    auto masks = prune_by_magnitude(m, {.sparsity = 0, .scope = scope});
    EXPECT_EQ(everything(m), everything(before));
    for (const auto& mask : masks) EXPECT_EQ(mask.pruned(), 0) << mask.name;
  }
}

TEST(Prune, PruningAgainToTheSameSparsityChangesNothing) {
  Sequential m = known_model();
  prune_by_magnitude(m, {.sparsity = 0.6});
  auto once = everything(m);
  prune_by_magnitude(m, {.sparsity = 0.6});
  EXPECT_EQ(everything(m), once);
}

TEST(Prune, SparsityReportCountsEachLayerAndAll) {
  Sequential m = known_model();
  SparsityReport none = sparsity_report(m);
  EXPECT_EQ(none.zeros, 0);
  EXPECT_EQ(none.count, 114);
  weight(m, 0)[3] = -0.0f;  // -0 is a zero too
  EXPECT_EQ(sparsity_report(m).zeros, 1);
  prune_by_magnitude(m, {.sparsity = 0.5});
  SparsityReport r = sparsity_report(m);
  ASSERT_EQ(r.layers.size(), 2u);
  EXPECT_EQ(r.layers[0].name, "0.weight");
  EXPECT_EQ(r.layers[0].kind, "Conv2d");
  EXPECT_EQ(r.layers[0].zeros, 9);  // the -0 (the smallest) and indices 10 to 17
  EXPECT_EQ(r.layers[0].count, 18);
  EXPECT_EQ(r.layers[1].kind, "Linear");
  EXPECT_EQ(r.layers[1].zeros, 48);
  EXPECT_EQ(r.zeros, 57);
  EXPECT_DOUBLE_EQ(r.fraction(), 57.0 / 114.0);
  EXPECT_EQ(weight(m, 0)[17], 0.0f);
  EXPECT_NE(weight(m, 0)[9], 0.0f);  // kept: the -0 took its place
}

TEST(Prune, BadSparsityIsRejectedBeforeAnythingChanges) {
  for (double s : {1.0, -0.1, 1.5, static_cast<double>(NAN)}) {
    Sequential m = known_model();
    Sequential before = known_model();
    std::string error = error_of([&] { prune_by_magnitude(m, {.sparsity = s}); });
    EXPECT_THAT(error, HasSubstr("prune: sparsity must be in [0, 1), got ")) << s;
    EXPECT_EQ(everything(m), everything(before)) << s;
  }
  Sequential m = known_model();
  EXPECT_EQ(error_of([&] { prune_by_magnitude(m, {.sparsity = 1}); }),
            "prune: sparsity must be in [0, 1), got 1");
}

TEST(Prune, NonFiniteWeightIsNamed) {
  Sequential m = known_model();
  weight(m, 4)[7] = NAN;
  EXPECT_EQ(error_of([&] { prune_by_magnitude(m, {.sparsity = 0.5}); }),
            "prune: 4.weight has a non-finite value (nan) at index 7");
  EXPECT_NE(weight(m, 0)[17], 0.0f);  // nothing pruned
}

// Fine-tuning on a toy set: the masks re-applied after every optimiser step keep exactly the
// pruned weights at 0 while the kept ones learn; without them the zeros fill in again.
class PruneFinetuneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::make_idx_set(dir_.path().string(), 300, 100, 12);
    splits_ = load_dataset(dir_.path().string(), "");
  }
  Sequential trained() {
    Sequential m = model_from_spec(R"({"input": [1, 12, 12], "layers": [
      {"type": "Conv2d", "out_channels": 4, "kernel": 3, "padding": 1}, {"type": "ReLU"},
      {"type": "MaxPool2d", "kernel": 2}, {"type": "Flatten"},
      {"type": "Linear", "out_features": 10}]})");
    m.init(recipe_.init, recipe_.seed);
    Trainer t(m, splits_.train, &splits_.test, recipe_);
    t.fit();
    EXPECT_GT(t.history().back().test_accuracy, 0.95);
    return m;
  }
  testing::TempDir dir_;
  DatasetSplits splits_;
  Recipe recipe_{.optimizer = "adam", .lr = 1e-2f, .batch_size = 16, .epochs = 2, .seed = 4};
};

TEST_F(PruneFinetuneTest, MasksReappliedAfterEveryStepKeepTheZeros) {
  Sequential m = trained();
  auto masks = prune_by_magnitude(m, {.sparsity = 0.8, .scope = PruneScope::kGlobal});
  const int64_t pruned = masks[0].pruned() + masks[1].pruned();
  EXPECT_LT(evaluate(m, splits_.test, recipe_.preprocess).accuracy, 0.9);
  EXPECT_EQ(pruned, 1181);  // round(0.8 * (36 + 1440))
  std::vector<std::vector<float>> after_pruning;
  for (const auto& mask : masks) after_pruning.push_back(mask.param->value.to_vector());

  Trainer t(m, splits_.train, &splits_.test, recipe_);
  int64_t steps = 0;
  t.fit({.on_step = [&](const StepInfo&) {
    apply_masks(masks);
    ++steps;
    EXPECT_EQ(sparsity_report(m).zeros, pruned) << "step " << steps;
  }});
  EXPECT_EQ(steps, 2 * 19);
  for (size_t k = 0; k < masks.size(); ++k) {
    const Tensor& w = masks[k].param->value;
    int64_t kept_changed = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      if (masks[k].keep[i] == 0.0f)
        EXPECT_EQ(w[i], 0.0f) << masks[k].name << " " << i;
      else
        kept_changed += w[i] != after_pruning[k][i];
    }
    EXPECT_GT(kept_changed, 0) << masks[k].name << ": fine-tuning changed no kept weight";
  }
  EXPECT_GT(t.history().back().test_accuracy, 0.95);  // 1.0 when trained, 0.82 when just pruned

  // The same fine-tuning without the masks: the optimiser moves the pruned weights off 0.
  Sequential unmasked = trained();
  prune_by_magnitude(unmasked, {.sparsity = 0.8, .scope = PruneScope::kGlobal});
  Trainer(unmasked, splits_.train, &splits_.test, recipe_).fit();
  EXPECT_LT(sparsity_report(unmasked).zeros, pruned / 10);
}

}  // namespace
}  // namespace scratchnet
