#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "scratchnet/model_spec.h"
#include "support/error.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

const char* kSmall = R"({
  "input": [1, 12, 10],
  "layers": [
    {"type": "Conv2d", "out_channels": 4, "kernel": 3, "padding": 1},
    {"type": "BatchNorm2d"},
    {"type": "LeakyReLU", "negative_slope": 0.2},
    {"type": "MaxPool2d", "kernel": 2},
    {"type": "AvgPool2d", "kernel": 3, "stride": 1, "padding": 1},
    {"type": "Flatten"},
    {"type": "Dropout", "p": 0.25, "seed": 3},
    {"type": "Linear", "out_features": 16},
    {"type": "BatchNorm1d", "eps": 0.001},
    {"type": "Tanh"},
    {"type": "Linear", "out_features": 8, "bias": false},
    {"type": "Sigmoid"},
    {"type": "ReLU"},
    {"type": "LogSoftmax"},
    {"type": "Softmax"}
  ]
})";

TEST(ModelSpec, BuildsEveryKindAndInfersInputSizes) {
  Sequential m = model_from_spec(kSmall);
  EXPECT_EQ(m.size(), 15u);
  EXPECT_EQ(m.layer(0).describe(), "Conv2d(1, 4, kernel=3, stride=1, padding=1)");
  EXPECT_EQ(m.layer(1).describe(), "BatchNorm2d(4, eps=1e-05, momentum=0.1)");
  EXPECT_EQ(m.layer(7).describe(), "Linear(120, 16)");  // 4 x 6 x 5 inferred
  EXPECT_EQ(m.output_shape(14), (Shape{8}));
  EXPECT_EQ(layer_kinds().size(), 16u);
}

TEST(ModelSpec, BuildsAndWritesTheInt8Kinds) {
  const char* spec = R"({"input": [2, 6, 6], "layers": [
    {"type": "Conv2dInt8", "out_channels": 3, "kernel": 3, "stride": 2, "padding": 1},
    {"type": "Flatten"}, {"type": "LinearInt8", "out_features": 4}]})";
  Sequential m = model_from_spec(spec);
  EXPECT_EQ(m.layer(0).describe(), "Conv2dInt8(2, 3, kernel=3, stride=2, padding=1)");
  EXPECT_EQ(m.layer(2).describe(), "LinearInt8(27, 4)");
  EXPECT_EQ(model_to_spec(model_from_spec(model_to_spec(m))), model_to_spec(m));
  EXPECT_THAT(error_of([] {
                model_from_spec(R"({"input": [4], "layers": [
                  {"type": "LinearInt8", "out_features": 2, "bias": false}]})");
              }),
              HasSubstr("unknown option 'bias'"));
}

TEST(ModelSpec, WrittenSpecRebuildsTheSameModel) {
  Sequential m = model_from_spec(kSmall);
  std::string spec = model_to_spec(m);
  EXPECT_THAT(spec, HasSubstr(R"("eps":0.001)"));
  EXPECT_THAT(spec, HasSubstr(R"("in_features":120)"));
  Sequential again = model_from_spec(spec);
  ASSERT_EQ(again.size(), m.size());
  for (size_t i = 0; i < m.size(); ++i) EXPECT_EQ(again.layer(i).describe(), m.layer(i).describe());
  EXPECT_EQ(model_to_spec(again), spec);
}

TEST(ModelSpec, LoadsAFile) {
  testing::TempDir dir;
  std::ofstream(dir / "m.json") << kSmall;
  EXPECT_EQ(load_model_spec(dir / "m.json").size(), 15u);
  EXPECT_THAT(error_of([&] { load_model_spec(dir / "missing.json"); }),
              HasSubstr("missing.json: cannot open the model spec"));
}

TEST(ModelSpec, UnknownLayerType) {
  EXPECT_THAT(error_of([] { model_from_spec(R"({"layers": [{"type": "Conv3d"}]})", "s.json"); }),
              HasSubstr("s.json: layer 0: unknown layer type 'Conv3d' (known: Conv2d, MaxPool2d"));
}

TEST(ModelSpec, UnknownOptionListsTheKnownOnes) {
  EXPECT_THAT(
      error_of([] {
        model_from_spec(R"({"layers": [{"type": "Conv2d", "out_channels": 2, "kernal": 3}]})",
                        "s.json");
      }),
      HasSubstr("s.json: layer 0 Conv2d: unknown option 'kernal' (known: bias, in_channels, "
                "kernel, out_channels, padding, stride)"));
}

TEST(ModelSpec, IllTypedOption) {
  EXPECT_THAT(
      error_of([] { model_from_spec(R"({"layers": [{"type": "Linear", "out_features": 2.5}]})"); }),
      HasSubstr("layer 0 Linear: option 'out_features' must be an integer, got 2.5"));
}

TEST(ModelSpec, BadLayerOptionNamesTheLayer) {
  EXPECT_THAT(error_of([] {
                model_from_spec(
                    R"({"layers": [{"type": "Conv2d", "out_channels": 2, "kernel": 0}]})",
                    "s.json");
              }),
              HasSubstr("s.json: layer 0 Conv2d: kernel must be at least 1, got 0"));
}

TEST(ModelSpec, ImpossibleShapesNameTheLayer) {
  // The PyTorch design document's mistake: 64*7*7 features after a single 2x2 pooling.
  const char* spec = R"({"input": [1, 28, 28], "layers": [
    {"type": "Conv2d", "out_channels": 64, "kernel": 3, "padding": 1},
    {"type": "MaxPool2d", "kernel": 2},
    {"type": "Flatten"},
    {"type": "Linear", "in_features": 3136, "out_features": 10}]})";
  EXPECT_THAT(error_of([&] { model_from_spec(spec, "doc.json"); }),
              HasSubstr("doc.json: layer 3 Linear: expects 3136 input features, got 12544"));
  EXPECT_THAT(error_of([] {
                model_from_spec(R"({"input": [1, 4, 4], "layers": [
                  {"type": "Conv2d", "out_channels": 2, "kernel": 7}]})");
              }),
              HasSubstr("layer 0 Conv2d: "));
}

TEST(ModelSpec, MalformedDocuments) {
  EXPECT_THAT(error_of([] { model_from_spec("{", "s.json"); }),
              HasSubstr("s.json: not valid JSON"));
  EXPECT_THAT(error_of([] { model_from_spec("[]", "s.json"); }),
              HasSubstr("s.json: a model spec must be a JSON object"));
  EXPECT_THAT(error_of([] { model_from_spec(R"({"layers": []})", "s.json"); }),
              HasSubstr("s.json: \"layers\" must be a non-empty array of layers"));
  EXPECT_THAT(
      error_of([] { model_from_spec(R"({"input": [0, 28], "layers": [{"type": "ReLU"}]})"); }),
      HasSubstr("\"input\" must be the per-sample shape, e.g. [1, 28, 28], got [0,28]"));
  EXPECT_THAT(error_of([] { model_from_spec(R"({"layer": []})", "s.json"); }),
              HasSubstr("s.json: unknown key 'layer' (known: input, layers, name)"));
  EXPECT_THAT(error_of([] { model_from_spec(R"({"layers": [3]})", "s.json"); }),
              HasSubstr("s.json: layer 0: expected an object with a \"type\", got 3"));
}

}  // namespace
}  // namespace scratchnet
