#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "scratchnet/layers/batch_norm1d.h"
#include "scratchnet/layers/batch_norm2d.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/flatten.h"
#include "scratchnet/layers/linear.h"
#include "scratchnet/layers/max_pool2d.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/presets.h"
#include "support/error.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;

using NamedShapes = std::vector<std::pair<std::string, Shape>>;

NamedShapes param_shapes(Sequential& model) {
  NamedShapes out;
  for (auto& p : model.params()) out.emplace_back(p.name, p.param->value.shape());
  return out;
}

NamedShapes buffer_shapes(Sequential& model) {
  NamedShapes out;
  for (auto& b : model.buffers()) out.emplace_back(b.name, b.tensor->shape());
  return out;
}

std::vector<std::string> kinds(const Sequential& model) {
  std::vector<std::string> out;
  for (size_t i = 0; i < model.size(); ++i) out.push_back(model.layer(i).kind());
  return out;
}

TEST(Presets, NamesInOrder) { EXPECT_THAT(preset_names(), ElementsAre("basic", "bn")); }

TEST(Presets, BasicLayersAsTorchSequential) {
  Sequential m = make_preset("basic");
  EXPECT_THAT(kinds(m), ElementsAre("Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                                    "Flatten", "Linear", "ReLU", "Linear"));
  EXPECT_EQ(m.input_shape(), (Shape{1, 28, 28}));
  EXPECT_THAT(m.layer(0).describe(), HasSubstr("Conv2d(1, 32, kernel=3, stride=1, padding=0"));
  EXPECT_EQ(m.layer(7).describe(), "Linear(1600, 128)");
}

TEST(Presets, BasicParamNamesAndShapesMatchStateDict) {
  Sequential m = make_preset("basic");
  // torch.nn.Sequential(...).state_dict() of the same model, names and shapes in order.
  NamedShapes want{{"0.weight", {32, 1, 3, 3}},  {"0.bias", {32}},
                   {"3.weight", {64, 32, 3, 3}}, {"3.bias", {64}},
                   {"7.weight", {128, 1600}},    {"7.bias", {128}},
                   {"9.weight", {10, 128}},      {"9.bias", {10}}};
  EXPECT_EQ(param_shapes(m), want);
  EXPECT_TRUE(m.buffers().empty());
  EXPECT_EQ(m.num_params(), 225034);
}

TEST(Presets, BasicOutputShapes) {
  Sequential m = make_preset("basic");
  std::vector<Shape> want{{32, 26, 26}, {32, 26, 26}, {32, 13, 13}, {64, 11, 11}, {64, 11, 11},
                          {64, 5, 5},   {1600},       {128},        {128},        {10}};
  ASSERT_EQ(m.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(m.output_shape(i), want[i]) << "layer " << i;
}

TEST(Presets, BnLayersAsTorchSequential) {
  Sequential m = make_preset("bn");
  EXPECT_THAT(kinds(m),
              ElementsAre("Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU",
                          "MaxPool2d", "Flatten", "Linear", "BatchNorm1d", "ReLU", "Linear"));
  EXPECT_THAT(m.layer(3).describe(), HasSubstr("Conv2d(32, 64, kernel=3, stride=1, padding=1"));
  EXPECT_EQ(m.layer(8).describe(), "Linear(12544, 128)");
  std::vector<Shape> want{{32, 28, 28}, {32, 28, 28}, {32, 28, 28}, {64, 28, 28},
                          {64, 28, 28}, {64, 28, 28}, {64, 14, 14}, {12544},
                          {128},        {128},        {128},        {10}};
  ASSERT_EQ(m.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(m.output_shape(i), want[i]) << "layer " << i;
}

TEST(Presets, BnParamAndBufferNamesMatchStateDict) {
  Sequential m = make_preset("bn");
  NamedShapes want_params{
      {"0.weight", {32, 1, 3, 3}},  {"0.bias", {32}},  {"1.weight", {32}},  {"1.bias", {32}},
      {"3.weight", {64, 32, 3, 3}}, {"3.bias", {64}},  {"4.weight", {64}},  {"4.bias", {64}},
      {"8.weight", {128, 12544}},   {"8.bias", {128}}, {"9.weight", {128}}, {"9.bias", {128}},
      {"11.weight", {10, 128}},     {"11.bias", {10}}};
  EXPECT_EQ(param_shapes(m), want_params);
  // state_dict's buffers; num_batches_tracked is a scalar there and here.
  NamedShapes want_buffers{
      {"1.running_mean", {32}},  {"1.running_var", {32}},  {"1.num_batches_tracked", {}},
      {"4.running_mean", {64}},  {"4.running_var", {64}},  {"4.num_batches_tracked", {}},
      {"9.running_mean", {128}}, {"9.running_var", {128}}, {"9.num_batches_tracked", {}}};
  EXPECT_EQ(buffer_shapes(m), want_buffers);
  // sum(p.numel() for p in model.parameters()) in PyTorch.
  EXPECT_EQ(m.num_params(), 1626314);
}

TEST(Presets, SummaryShowsShapesAndTotals) {
  std::string basic = make_preset("basic").summary();
  for (const char* s :
       {"(N, 32, 26, 26)", "(N, 32, 13, 13)", "(N, 64, 11, 11)", "(N, 64, 5, 5)", "(N, 1600)",
        "(N, 128)", "(N, 10)", "input (N, 1, 28, 28)", "225034 parameters"})
    EXPECT_THAT(basic, HasSubstr(s));
  std::string bn = make_preset("bn").summary();
  for (const char* s : {"(N, 32, 28, 28)", "(N, 64, 28, 28)", "(N, 64, 14, 14)", "(N, 12544)",
                        "BatchNorm1d(128", "1626314 parameters"})
    EXPECT_THAT(bn, HasSubstr(s));
}

TEST(Presets, InitialisedDeterministicallyAndRuns) {
  for (const std::string& name : preset_names()) {
    Sequential a = make_preset(name);
    Sequential b = make_preset(name);
    auto pa = a.params();
    auto pb = b.params();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_EQ(pa[i].param->value.to_vector(), pb[i].param->value.to_vector()) << pa[i].name;
      // Conv2d and Linear are drawn (PyTorch's bounds); BatchNorm starts at weight 1, bias 0.
      size_t layer = std::stoul(pa[i].name);
      bool is_bn = a.layer(layer).kind().starts_with("BatchNorm");
      bool is_weight = pa[i].name.ends_with(".weight");
      float bound = 0;
      if (!is_bn) {
        const Tensor& w = a.params()[is_weight ? i : i - 1].param->value;
        bound = 1.0f / std::sqrt(static_cast<float>(w.numel() / w.dim(0)));
      }
      double sum_abs = 0;
      for (float v : pa[i].param->value) {
        sum_abs += std::abs(v);
        if (is_bn) {
          EXPECT_EQ(v, is_weight ? 1.0f : 0.0f) << name << " " << pa[i].name;
        } else {
          EXPECT_LE(std::abs(v), bound) << name << " " << pa[i].name;
        }
      }
      if (!is_bn) {
        EXPECT_GT(sum_abs, 0) << name << " " << pa[i].name << " is all zeros";
      }
    }
    Tensor x({2, 1, 28, 28});
    Rng rng(7);
    for (float& v : x) v = rng.uniform();
    const Tensor& logits = a.forward(x, Mode::kTrain);
    ASSERT_EQ(logits.shape(), (Shape{2, 10})) << name;
    for (float v : logits) EXPECT_TRUE(std::isfinite(v)) << name;
  }
}

TEST(Presets, Recipes) {
  Recipe basic = preset_recipe("basic");
  EXPECT_EQ(basic.optimizer, "adam");
  EXPECT_FLOAT_EQ(basic.lr, 1e-3f);
  EXPECT_EQ(basic.batch_size, 64);
  EXPECT_EQ(basic.epochs, 5);
  EXPECT_FALSE(basic.preprocess.normalize);

  Recipe bn = preset_recipe("bn");
  EXPECT_EQ(bn.optimizer, "sgd");
  EXPECT_FLOAT_EQ(bn.lr, 0.01f);
  EXPECT_FLOAT_EQ(bn.momentum, 0.9f);
  EXPECT_EQ(bn.batch_size, 64);
  EXPECT_EQ(bn.epochs, 10);
  EXPECT_TRUE(bn.preprocess.normalize);
  EXPECT_FLOAT_EQ(bn.preprocess.mean, 0.1307f);
  EXPECT_FLOAT_EQ(bn.preprocess.std, 0.3081f);
}

TEST(Presets, UnknownNameListsTheKnownOnes) {
  EXPECT_EQ(error_of([] { make_preset("foo"); }), "unknown preset 'foo' (known: basic, bn)");
  EXPECT_EQ(error_of([] { preset_recipe("BASIC"); }), "unknown preset 'BASIC' (known: basic, bn)");
}

// The design document's PyTorch model: the bn architecture, but the first Linear sized for
// 64*7*7 features as if there were two poolings. It must fail when built, not train garbage.
TEST(Presets, DesignDocumentFlattenBugCaughtAtBuild) {
  Sequential m;
  m.add(Conv2d({.in_channels = 1, .out_channels = 32, .kernel = 3, .padding = 1}))
      .add(BatchNorm2d({.num_features = 32}))
      .add(ReLU())
      .add(Conv2d({.in_channels = 32, .out_channels = 64, .kernel = 3, .padding = 1}))
      .add(BatchNorm2d({.num_features = 64}))
      .add(ReLU())
      .add(MaxPool2d({.kernel = 2}))
      .add(Flatten())
      .add(Linear({.in_features = 64 * 7 * 7, .out_features = 128}))
      .add(BatchNorm1d({.num_features = 128}))
      .add(ReLU())
      .add(Linear({.in_features = 128, .out_features = 10}));
  std::string msg = error_of([&] { m.build({1, 28, 28}); });
  EXPECT_THAT(msg, HasSubstr("layer 8 Linear"));
  EXPECT_THAT(msg, HasSubstr("expects 3136 input features, got 12544"));
  EXPECT_FALSE(m.built());
}

}  // namespace
}  // namespace scratchnet
