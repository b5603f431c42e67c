// int8 layers and post-training quantisation: the int8 layers against a double-precision
// evaluation of their definition, BatchNorm folding, int8 model files and their errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "scratchnet/io/model_file.h"
#include "scratchnet/io/safetensors.h"
#include "scratchnet/layers/batch_norm1d.h"
#include "scratchnet/layers/batch_norm2d.h"
#include "scratchnet/layers/conv2d_int8.h"
#include "scratchnet/layers/flatten.h"
#include "scratchnet/layers/linear_int8.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/parallel.h"
#include "scratchnet/quantize.h"
#include "scratchnet/rng.h"
#include "support/error.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

float uniform(Rng& rng, float lo, float hi) {
  return lo + (hi - lo) * static_cast<float>(rng.below(1 << 24)) / (1 << 24);
}

// Random int8 weights, scales, bias, input scale and zero point.
void fill_random(Int8Weights& q, Rng& rng) {
  for (float& w : q.weight) w = static_cast<float>(static_cast<int>(rng.below(255)) - 127);
  for (float& s : q.weight_scale) s = uniform(rng, 0.001f, 0.02f);
  for (float& b : q.bias) b = uniform(rng, -1, 1);
  q.input_scale.data()[0] = 0.02f;
  q.input_zero_point.data()[0] = static_cast<float>(rng.below(256));
}

// x_q as int8_weights.h defines it, in the scalar form.
int quantized(float x, const Int8Weights& q) {
  const float v = std::fma(x, 1 / q.input_scale.data()[0], q.input_zero_point.data()[0]);
  return static_cast<int>(std::nearbyint(std::min(std::max(0.0f, v), 255.0f)));
}

void expect_close(const Tensor& got, const std::vector<double>& want) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.data()[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << "element " << i;
}

TEST(Conv2dInt8, MatchesItsDefinitionForEveryStrideAndPadding) {
  Rng rng(11);
  for (int64_t stride : {1, 2})
    for (int64_t padding : {0, 1, 2})
      for (int64_t c : {1, 3, 8}) {
        SCOPED_TRACE(::testing::Message()
                     << "stride " << stride << " padding " << padding << " channels " << c);
        const Conv2dOptions o{.in_channels = c,
                              .out_channels = 19,
                              .kernel = 3,
                              .stride = stride,
                              .padding = padding};
        Conv2dInt8 layer(o);
        fill_random(layer.weights(), rng);
        const Shape in_shape{3, c, 9, 7};
        Tensor in(in_shape);
        for (float& x : in) x = uniform(rng, -2.5f, 3.5f);  // some clamp at 0 and 255
        Tensor out(layer.output_shape(in_shape));
        layer.forward(out, in, Mode::kEval);

        const Int8Weights& q = layer.weights();
        const int z = static_cast<int>(q.input_zero_point.data()[0]);
        const int64_t oh = out.dim(2), ow = out.dim(3);
        std::vector<double> want;
        for (int64_t n = 0; n < 3; ++n)
          for (int64_t oc = 0; oc < 19; ++oc)
            for (int64_t y = 0; y < oh; ++y)
              for (int64_t x = 0; x < ow; ++x) {
                int64_t sum = 0;
                for (int64_t ci = 0; ci < c; ++ci)
                  for (int64_t i = 0; i < 3; ++i)
                    for (int64_t j = 0; j < 3; ++j) {
                      const int64_t yy = y * stride + i - padding, xx = x * stride + j - padding;
                      const bool inside = yy >= 0 && yy < 9 && xx >= 0 && xx < 7;
                      const int xq =
                          inside ? quantized(in.data()[((n * c + ci) * 9 + yy) * 7 + xx], q) : z;
                      sum += (xq - z) *
                             static_cast<int64_t>(q.weight.data()[((oc * c + ci) * 3 + i) * 3 + j]);
                    }
                want.push_back(q.bias.data()[oc] + double(q.input_scale.data()[0]) *
                                                       q.weight_scale.data()[oc] * double(sum));
              }
        expect_close(out, want);
      }
}

TEST(LinearInt8, MatchesItsDefinitionAndIgnoresTheThreadCount) {
  Rng rng(5);
  LinearInt8 layer({.in_features = 37, .out_features = 21});
  fill_random(layer.weights(), rng);
  Tensor in({101, 37});
  for (float& x : in) x = uniform(rng, -3, 3);
  Tensor out({101, 21}), out1({101, 21});
  layer.forward(out, in, Mode::kEval);
  const Int8Weights& q = layer.weights();
  const int z = static_cast<int>(q.input_zero_point.data()[0]);
  std::vector<double> want;
  for (int64_t n = 0; n < 101; ++n)
    for (int64_t o = 0; o < 21; ++o) {
      int64_t sum = 0;
      for (int64_t i = 0; i < 37; ++i)
        sum += (quantized(in.data()[n * 37 + i], q) - z) *
               static_cast<int64_t>(q.weight.data()[o * 37 + i]);
      want.push_back(q.bias.data()[o] +
                     double(q.input_scale.data()[0]) * q.weight_scale.data()[o] * double(sum));
    }
  expect_close(out, want);

  const int saved = num_threads();
  set_num_threads(1);
  layer.forward(out1, in, Mode::kEval);
  set_num_threads(saved);
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_EQ(out.data()[i], out1.data()[i]);
}

TEST(Int8Layers, RejectBadTensorsAndBackward) {
  LinearInt8 layer({.in_features = 4, .out_features = 2});
  layer.weights().weight.data()[3] = 128;
  EXPECT_EQ(error_of([&] { layer.prepare(); }),
            "weight holds 128, expected integers in [-127, 127]");
  layer.weights().weight.data()[3] = 0.5f;
  EXPECT_EQ(error_of([&] { layer.prepare(); }),
            "weight holds 0.5, expected integers in [-127, 127]");
  layer.weights().weight.data()[3] = 1;
  layer.weights().weight_scale.data()[1] = 0;
  EXPECT_EQ(error_of([&] { layer.prepare(); }), "weight_scale holds 0, expected positive scales");
  layer.weights().weight_scale.data()[1] = 1;
  layer.weights().input_zero_point.data()[0] = 256;
  EXPECT_EQ(error_of([&] { layer.prepare(); }),
            "input_zero_point is 256, expected an integer in [0, 255]");
  layer.weights().input_zero_point.data()[0] = 0;
  layer.weights().input_scale.data()[0] = -1;
  EXPECT_EQ(error_of([&] { layer.prepare(); }), "input_scale is -1, expected a positive scale");
  Tensor t;
  EXPECT_THAT(error_of([&] { layer.backward(t, t, t, t); }), HasSubstr("inference only"));
}

// Conv -> BN2d -> ReLU -> Conv -> ReLU -> Flatten -> Linear -> BN1d -> ReLU -> Linear, with
// non-trivial running statistics, and a random set of 8x8 images.
struct Fixture {
  Sequential model;
  Dataset set;

  Fixture() {
    model.add(Conv2d({.in_channels = 1, .out_channels = 4, .kernel = 3, .padding = 1}))
        .add(BatchNorm2d({.num_features = 4}))
        .add(ReLU())
        .add(Conv2d({.in_channels = 4, .out_channels = 6, .kernel = 3, .bias = false}))
        .add(BatchNorm2d({.num_features = 6}))
        .add(ReLU())
        .add(Flatten())
        .add(Linear({.in_features = 216, .out_features = 12}))
        .add(BatchNorm1d({.num_features = 12}))
        .add(ReLU())
        .add(Linear({.in_features = 12, .out_features = 3}));
    model.build({1, 8, 8});
    model.init(Init::kPyTorch, 3);
    Rng rng(9);
    for (auto& b : model.buffers())
      if (b.name.find("running_var") != std::string::npos)
        for (float& v : *b.tensor) v = uniform(rng, 0.5f, 2);
      else if (b.name.find("running_mean") != std::string::npos)
        for (float& v : *b.tensor) v = uniform(rng, -0.2f, 0.2f);
    for (auto& p : model.params())
      if (p.name == "1.weight" || p.name == "4.weight" || p.name == "8.weight")
        for (float& v : p.param->value) v = uniform(rng, 0.5f, 1.5f);
    set.source = "random";
    set.height = set.width = 8;
    set.class_names = {"a", "b", "c"};
    for (int i = 0; i < 300; ++i) {
      set.labels.push_back(i % 3);
      for (int p = 0; p < 64; ++p) set.images.push_back(static_cast<uint8_t>(rng.below(256)));
    }
  }
};

TEST(QuantizeInt8, FoldsBatchNormAndStaysCloseToTheFloatModel) {
  Fixture f;
  Sequential q = quantize_int8(f.model, f.set, {}, {.calibration_images = 200});
  std::vector<std::string> kinds;
  for (size_t i = 0; i < q.size(); ++i) kinds.push_back(q.layer(i).kind());
  // The first convolution (9 taps) stays float, and so does its BatchNorm.
  EXPECT_EQ(kinds, (std::vector<std::string>{"Conv2d", "BatchNorm2d", "ReLU", "Conv2dInt8", "ReLU",
                                             "Flatten", "LinearInt8", "ReLU", "LinearInt8"}));
  Tensor x;
  std::vector<int64_t> all(300);
  for (int i = 0; i < 300; ++i) all[i] = i;
  make_batch(x, f.set, all.data(), 300, {});
  const Tensor want = f.model.forward(x, Mode::kEval);
  const Tensor& got = q.forward(x, Mode::kEval);
  double max_diff = 0, max_abs = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    max_diff = std::max(max_diff, double(std::abs(got.data()[i] - want.data()[i])));
    max_abs = std::max(max_abs, double(std::abs(want.data()[i])));
  }
  EXPECT_GT(max_abs, 0.1);
  EXPECT_LT(max_diff, 0.03 * max_abs) << "int8 outputs drift from the float model";
  EXPECT_GT(max_diff, 0) << "an int8 model that equals the float one was not quantised";
}

TEST(QuantizeInt8, RejectsAnEmptyOrMismatchedSet) {
  Fixture f;
  Dataset empty = f.set;
  empty.images.clear();
  empty.labels.clear();
  EXPECT_EQ(error_of([&] { quantize_int8(f.model, empty, {}); }),
            "quantize_int8: the calibration set random is empty");
  Dataset other = f.set;
  other.height = other.width = 4;
  other.images.resize(300 * 16);
  EXPECT_EQ(error_of([&] { quantize_int8(f.model, other, {}); }),
            "quantize_int8: the calibration set random has images of shape (1, 4, 4), the model "
            "takes (1, 8, 8)");
}

TEST(QuantizeInt8, ModelFilesStoreInt8AndLoadBackExactly) {
  testing::TempDir dir;
  Fixture f;
  Sequential q = quantize_int8(f.model, f.set, {});
  const ModelInfo info{.class_names = {"a", "b", "c"}};
  save_model(dir / "q.safetensors", q, info);
  const SafeTensors file = read_safetensors(dir / "q.safetensors");
  EXPECT_EQ(file.int8, (std::set<std::string>{"3.weight", "6.weight", "8.weight"}));
  LoadedModel loaded = load_model(dir / "q.safetensors");
  EXPECT_EQ(loaded.model.layer(3).describe(), "Conv2dInt8(4, 6, kernel=3, stride=1, padding=0)");
  EXPECT_EQ(loaded.model.layer(6).describe(), "LinearInt8(216, 12)");

  Tensor x;
  std::vector<int64_t> first(50);
  for (int i = 0; i < 50; ++i) first[i] = i;
  make_batch(x, f.set, first.data(), 50, {});
  const Tensor want = q.forward(x, Mode::kEval);
  const Tensor& got = loaded.model.forward(x, Mode::kEval);
  for (int64_t i = 0; i < want.numel(); ++i) ASSERT_EQ(got.data()[i], want.data()[i]);
  const Tensor logits = loaded.model.forward(x, Mode::kTrain);
  EXPECT_THAT(error_of([&] { loaded.model.backward(logits); }), HasSubstr("inference only"));

  // A tampered file: a zero point out of range, caught on load, naming file and layer.
  SafeTensors bad = file;
  bad.tensors["6.input_zero_point"].data()[0] = 300;
  write_safetensors(dir / "bad.safetensors", bad);
  EXPECT_EQ(error_of([&] { load_model(dir / "bad.safetensors"); }),
            dir / "bad.safetensors" +
                ": layer 6 LinearInt8: input_zero_point is 300, expected an integer in [0, 255]");
}

TEST(Safetensors, WritesI8OnlyForIntegersInRange) {
  testing::TempDir dir;
  SafeTensors file;
  file.tensors["w"] = Tensor({3}, {-128, 0, 127});
  file.int8 = {"w"};
  write_safetensors(dir / "ok.safetensors", file);
  const SafeTensors back = read_safetensors(dir / "ok.safetensors");
  EXPECT_EQ(back.int8, std::set<std::string>{"w"});
  EXPECT_EQ(std::vector<float>(back.tensors.at("w").begin(), back.tensors.at("w").end()),
            (std::vector<float>{-128, 0, 127}));
  file.tensors["w"].data()[1] = 128;
  EXPECT_EQ(error_of([&] { write_safetensors(dir / "bad.safetensors", file); }),
            dir / "bad.safetensors" + ": tensor \"w\" is stored as I8 but holds 128");
  file.int8 = {"v"};
  EXPECT_EQ(error_of([&] { write_safetensors(dir / "bad.safetensors", file); }),
            dir / "bad.safetensors" + ": int8 tensor \"v\" is not among the tensors");
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.safetensors"));
}

}  // namespace
}  // namespace scratchnet
