#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "scratchnet/layers/avg_pool2d.h"
#include "scratchnet/layers/batch_norm1d.h"
#include "scratchnet/layers/batch_norm2d.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/dropout.h"
#include "scratchnet/layers/flatten.h"
#include "scratchnet/layers/linear.h"
#include "scratchnet/layers/max_pool2d.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/layers/tanh.h"
#include "scratchnet/loss.h"
#include "scratchnet/model.h"
#include "scratchnet/parallel.h"
#include "support/error.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

Sequential small_cnn() {
  Sequential m;
  m.add(Conv2d({.in_channels = 1, .out_channels = 3, .kernel = 3, .padding = 1}))
      .add(Tanh())
      .add(MaxPool2d({.kernel = 2}))
      .add(Flatten())
      .add(Linear({.in_features = 3 * 3 * 2, .out_features = 4}));
  m.build({1, 6, 5});
  return m;
}

Tensor random_tensor(Shape shape, uint64_t seed) {
  Tensor t(std::move(shape));
  Rng rng(seed);
  for (float& v : t) v = rng.uniform(-1.0f, 1.0f);
  return t;
}

TEST(Sequential, BuildInfersEveryShape) {
  Sequential m = small_cnn();
  EXPECT_EQ(m.output_shape(0), (Shape{3, 6, 5}));
  EXPECT_EQ(m.output_shape(2), (Shape{3, 3, 2}));
  EXPECT_EQ(m.output_shape(4), (Shape{4}));
  EXPECT_EQ(m.input_shape(), (Shape{1, 6, 5}));
}

TEST(Sequential, BuildNamesTheLayerThatDoesNotFit) {
  // A Linear sized for 64x7x7 after a flatten that yields 64x14x14.
  Sequential m;
  m.add(Conv2d({.in_channels = 1, .out_channels = 64, .kernel = 3, .padding = 1}))
      .add(MaxPool2d({.kernel = 2}))
      .add(Flatten())
      .add(Linear({.in_features = 64 * 7 * 7, .out_features = 10}));
  EXPECT_THAT(error_of([&] {
                m.build({1, 28, 28});
              }),
              HasSubstr("layer 3 Linear: expects 3136 input features, got 12544"));
}

TEST(Sequential, ChannelMismatchBetweenLayers) {
  Sequential m;
  m.add(Conv2d({.in_channels = 1, .out_channels = 32, .kernel = 3}))
      .add(Conv2d({.in_channels = 64, .out_channels = 64, .kernel = 3}));
  EXPECT_THAT(error_of([&] {
                m.build({1, 28, 28});
              }),
              HasSubstr("layer 1 Conv2d: expects 64 input channels, got 32"));
}

TEST(Sequential, EmptyModelAndUnbuiltModel) {
  Sequential empty;
  EXPECT_THAT(error_of([&] {
                empty.build({1, 28, 28});
              }),
              HasSubstr("cannot build an empty model"));
  Sequential m;
  m.add(ReLU());
  Tensor x({1, 4});
  EXPECT_THAT(error_of([&] { m.forward(x, Mode::kEval); }),
              HasSubstr("model is not built: call build(input_shape) first"));
}

TEST(Sequential, ForwardRejectsAWrongInput) {
  Sequential m = small_cnn();
  Tensor x({2, 1, 5, 6});
  EXPECT_THAT(error_of([&] { m.forward(x, Mode::kEval); }),
              HasSubstr("model input: expected shape (N, 1, 6, 5), got (2, 1, 5, 6)"));
}

TEST(Sequential, ParameterNamesFollowPyTorch) {
  Sequential m = small_cnn();
  std::vector<std::string> names;
  for (auto& p : m.params()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "4.weight", "4.bias"}));
  EXPECT_EQ(m.num_params(), 3 * 9 + 3 + 18 * 4 + 4);
}

TEST(Sequential, FlopsAndSummary) {
  Sequential m = small_cnn();
  int64_t conv = 2 * 3 * 6 * 5 * 9 + 3 * 6 * 5;
  EXPECT_EQ(m.flops_per_sample(), conv + m.layer(1).flops({1, 3, 6, 5}) +
                                      m.layer(2).flops({1, 3, 6, 5}) + (2 * 18 * 4 + 4));
  std::string s = m.summary();
  EXPECT_THAT(s, HasSubstr("Conv2d(1, 3, kernel=3, stride=1, padding=1)"));
  EXPECT_THAT(s, HasSubstr("(N, 3, 3, 2)"));
  EXPECT_THAT(s, HasSubstr("input (N, 1, 6, 5), 106 parameters"));
}

TEST(Sequential, InitIsSeeded) {
  Sequential a = small_cnn(), b = small_cnn(), c = small_cnn();
  a.init(Init::kPyTorch, 5);
  b.init(Init::kPyTorch, 5);
  c.init(Init::kPyTorch, 6);
  EXPECT_EQ(a.params()[0].param->value.to_vector(), b.params()[0].param->value.to_vector());
  EXPECT_NE(a.params()[0].param->value.to_vector(), c.params()[0].param->value.to_vector());
  // PyTorch's bound for the conv: 1/sqrt(fan_in) = 1/3.
  for (float v : a.params()[0].param->value) EXPECT_LE(std::abs(v), 1.0f / 3.0f);
}

// The chain through the model agrees with finite differences of the loss (float, so the
// step and tolerance are loose; each layer's exact check is in its own test).
TEST(Sequential, BackwardMatchesFiniteDifferencesOfTheLoss) {
  Sequential m = small_cnn();
  m.init(Init::kPyTorch, 1);
  Tensor x = random_tensor({3, 1, 6, 5}, 2);
  std::vector<int32_t> labels = {0, 3, 1};
  Tensor d_logits;
  m.zero_grad();
  cross_entropy_loss(m.forward(x, Mode::kTrain), labels, &d_logits);
  Tensor d_x = m.backward(d_logits);
  auto loss = [&] { return cross_entropy_loss(m.forward(x, Mode::kTrain), labels); };
  const float eps = 1e-2f;
  auto check = [&](float& v, float analytic, const std::string& what) {
    float saved = v;
    v = saved + eps;
    double plus = loss();
    v = saved - eps;
    double minus = loss();
    v = saved;
    double numeric = (plus - minus) / (2 * eps);
    EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::abs(numeric)) << what;
  };
  for (auto& p : m.params())
    for (int64_t i = 0; i < p.param->value.numel(); i += 3)
      check(p.param->value[i], p.param->grad[i], p.name + "[" + std::to_string(i) + "]");
  for (int64_t i = 0; i < x.numel(); i += 7) check(x[i], d_x[i], "x[" + std::to_string(i) + "]");
}

TEST(Sequential, BuffersAreReusedAcrossSteps) {
  Sequential m = small_cnn();
  Tensor x = random_tensor({8, 1, 6, 5}, 3);
  const float* first = m.forward(x, Mode::kEval).data();
  Tensor small = random_tensor({5, 1, 6, 5}, 4);
  EXPECT_EQ(m.forward(small, Mode::kEval).data(), first);  // smaller batch, same storage
  EXPECT_EQ(m.forward(small, Mode::kEval).dim(0), 5);
  EXPECT_EQ(m.forward(x, Mode::kEval).data(), first);
}

// Conv ReLU MaxPool(2) Conv BatchNorm ReLU from 1 channel to 6: both kinds of ReLU pair.
Sequential& add_fusable_convs(Sequential& m) {
  return m.add(Conv2d({.in_channels = 1, .out_channels = 4, .kernel = 3, .padding = 1}))
      .add(ReLU())
      .add(MaxPool2d({.kernel = 2}))
      .add(Conv2d({.in_channels = 4, .out_channels = 6, .kernel = 3, .padding = 1}))
      .add(BatchNorm2d({.num_features = 6}))
      .add(ReLU());
}

// Every shortcut of the eval forward at once: ReLU then max-pool, BatchNorm then ReLU,
// Flatten and Dropout as reshapes, chunks of samples (600 > the chunk of 256) and a Linear
// big enough to run on the whole batch after them.
// The layers of m one by one in eval mode.
Tensor eval_one_by_one(Sequential& m, const Tensor& x) {
  Tensor expected = x;
  for (size_t i = 0; i < m.size(); ++i) {
    Shape shape = m.output_shape(i);
    shape.insert(shape.begin(), x.dim(0));
    Tensor out(shape);
    m.layer(i).forward(out, expected, Mode::kEval);
    expected = out;
  }
  return expected;
}

// Running statistics away from 0 and 1, so that BatchNorm's eval affine map matters.
void randomize_running_stats(Sequential& m, uint64_t seed) {
  for (auto& b : m.buffers()) {
    if (b.name.find("running_mean") != std::string::npos)
      *b.tensor = random_tensor(b.tensor->shape(), ++seed);
    if (b.name.find("running_var") != std::string::npos)
      for (float& v : *b.tensor) v = 0.5f + std::abs(v) + 0.01f * static_cast<float>(++seed % 7);
  }
}

TEST(Sequential, EvalForwardEqualsTheLayersOneByOne) {
  Sequential m;
  add_fusable_convs(m)
      .add(Dropout({.p = 0.5f}))
      .add(Flatten())
      .add(Linear({.in_features = 6 * 6 * 6, .out_features = 300}))
      .add(BatchNorm1d({.num_features = 300}))
      .add(ReLU())
      .add(Linear({.in_features = 300, .out_features = 5}))
      .add(ReLU());
  m.build({1, 12, 12});
  m.init(Init::kPyTorch, 7);
  randomize_running_stats(m, 20);
  for (int64_t n : {1, 7, 600}) {
    Tensor x = random_tensor({n, 1, 12, 12}, 30 + n);
    Tensor expected = eval_one_by_one(m, x);
    const Tensor& got = m.forward(x, Mode::kEval);
    ASSERT_EQ(got.shape(), expected.shape()) << "n=" << n;
    EXPECT_EQ(got.to_vector(), expected.to_vector()) << "n=" << n;
  }
}

// A large eval batch runs in chunks side by side on the threads, each chunk on one thread,
// when the chunked layers keep no state (here Conv2d, BatchNorm2d, ReLU, Flatten), and one
// chunk after another otherwise (an average pool in them): the layers' values either way, on
// 1, 2 and 3 threads, and the batch norm's running statistics untouched.
TEST(Sequential, EvalChunksOnSeveralThreadsGiveTheLayersValues) {
  const int saved = num_threads();
  for (bool pooled : {false, true}) {
    Sequential m;
    m.add(Conv2d({.in_channels = 1, .out_channels = 4, .kernel = 3, .padding = 1}))
        .add(BatchNorm2d({.num_features = 4}))
        .add(ReLU());
    if (pooled) m.add(AvgPool2d({.kernel = 2}));
    const int64_t features = pooled ? 4 * 6 * 6 : 4 * 12 * 12;
    m.add(Flatten()).add(Linear({.in_features = features, .out_features = 300}));
    m.build({1, 12, 12});
    m.init(Init::kPyTorch, 40);
    randomize_running_stats(m, 41);
    const std::vector<float> stats = m.layer(1).buffers()[0].tensor->to_vector();
    for (int threads : {1, 2, 3}) {  // a new batch each time: no chunk is left from the last
      Tensor x = random_tensor({600, 1, 12, 12}, 42 + threads);  // 3 chunks of up to 256
      const std::vector<float> want = eval_one_by_one(m, x).to_vector();
      set_num_threads(threads);
      EXPECT_EQ(m.forward(x, Mode::kEval).to_vector(), want)
          << "pooled=" << pooled << " threads=" << threads;
    }
    EXPECT_EQ(m.layer(1).buffers()[0].tensor->to_vector(), stats);
  }
  set_num_threads(saved);
}

// Conv2d, BatchNorm2d, ReLU with and then without MaxPool2d(2), and Conv2d, ReLU, MaxPool2d,
// on shapes where Winograd runs the convolution (8 channels, rows of 12 and 6 tiles), each
// run as one pass in eval (Conv2d::forward_eval_fused), after a first block that has no such
// path (3 channels in): the values of the layers one by one, for one chunk of samples and
// for several.
TEST(Sequential, EvalConvBatchNormReluBlocksEqualTheLayersOneByOne) {
  Sequential m;
  for (int64_t in_channels : {3, 8, 8}) {
    m.add(Conv2d({.in_channels = in_channels, .out_channels = 8, .kernel = 3, .padding = 1}))
        .add(BatchNorm2d({.num_features = 8}))
        .add(ReLU());
    if (m.size() == 6) m.add(MaxPool2d({.kernel = 2}));
  }
  m.add(Conv2d({.in_channels = 8, .out_channels = 8, .kernel = 3, .padding = 1}))
      .add(ReLU())
      .add(MaxPool2d({.kernel = 2}))
      .add(Flatten())
      .add(Linear({.in_features = 8 * 6 * 6, .out_features = 5}));
  m.build({3, 24, 24});
  m.init(Init::kPyTorch, 8);
  randomize_running_stats(m, 40);
  for (int64_t n : {9, 300}) {
    Tensor x = random_tensor({n, 3, 24, 24}, 50 + n);
    Tensor expected = eval_one_by_one(m, x);
    const Tensor& got = m.forward(x, Mode::kEval);
    ASSERT_EQ(got.shape(), expected.shape()) << "n=" << n;
    EXPECT_EQ(got.to_vector(), expected.to_vector()) << "n=" << n;
  }
}

// The layers of `m` one by one in training mode, forward then backward from d_out down to
// layer down_to: the output, every parameter gradient and the returned input gradient.
std::vector<std::vector<float>> step_one_by_one(Sequential& m, const Tensor& x, const Tensor& d_out,
                                                size_t down_to) {
  std::vector<Tensor> acts{x};
  for (size_t i = 0; i < m.size(); ++i) {
    Shape shape = m.output_shape(i);
    shape.insert(shape.begin(), x.dim(0));
    Tensor out(shape);
    m.layer(i).forward(out, acts.back(), Mode::kTrain);
    acts.push_back(out);
  }
  std::vector<std::vector<float>> result{acts.back().to_vector()};
  Tensor d = d_out;
  for (size_t i = m.size(); i-- > down_to;) {
    Tensor d_in(acts[i].shape());
    m.layer(i).backward(d_in, d, acts[i], acts[i + 1]);
    d = d_in;
  }
  for (auto& p : m.params()) result.push_back(p.param->grad.to_vector());
  for (auto& b : m.buffers()) result.push_back(b.tensor->to_vector());
  result.push_back(d.to_vector());
  return result;
}

std::vector<std::vector<float>> step_as_a_model(Sequential& m, const Tensor& x, const Tensor& d_out,
                                                size_t down_to, bool input_grad = true) {
  std::vector<std::vector<float>> result{m.forward(x, Mode::kTrain).to_vector()};
  const Tensor& d = m.backward(d_out, down_to, input_grad);
  for (auto& p : m.params()) result.push_back(p.param->grad.to_vector());
  for (auto& b : m.buffers()) result.push_back(b.tensor->to_vector());
  result.push_back(d.to_vector());
  return result;
}

// Layers 0-5 as add_fusable_convs, 6 Flatten, 7 Linear, 8 ReLU, for inputs (1, 10, 10).
Sequential fusable_model() {
  Sequential m;
  add_fusable_convs(m)
      .add(Flatten())
      .add(Linear({.in_features = 6 * 5 * 5, .out_features = 7}))
      .add(ReLU());
  m.build({1, 10, 10});
  m.init(Init::kPyTorch, 11);
  return m;
}

// Conv2d, BatchNorm2d, ReLU, MaxPool2d(2), Flatten, Linear for inputs (1, 10, 10): the ReLU
// pairs with the max-pool rather than with the BatchNorm.
Sequential batch_norm_pool_model() {
  Sequential m;
  m.add(Conv2d({.in_channels = 1, .out_channels = 4, .kernel = 3, .padding = 1}))
      .add(BatchNorm2d({.num_features = 4}))
      .add(ReLU())
      .add(MaxPool2d({.kernel = 2}))
      .add(Flatten())
      .add(Linear({.in_features = 4 * 5 * 5, .out_features = 7}));
  m.build({1, 10, 10});
  m.init(Init::kPyTorch, 14);
  return m;
}

// The same with planes of 9 x 9 (81 values: the sums' lanes have a tail) and overlapping
// padded windows (3 x 3, stride 2, padding 1: the pool's general path).
Sequential overlapping_pool_model() {
  Sequential m;
  m.add(Conv2d({.in_channels = 1, .out_channels = 4, .kernel = 2}))
      .add(BatchNorm2d({.num_features = 4}))
      .add(ReLU())
      .add(MaxPool2d({.kernel = 3, .stride = 2, .padding = 1}))
      .add(Flatten())
      .add(Linear({.in_features = 4 * 5 * 5, .out_features = 7}));
  m.build({1, 10, 10});
  m.init(Init::kPyTorch, 17);
  return m;
}

// In eval mode too, BatchNorm then (ReLU, max-pool) as max-pool then ReLU gives the layers'
// values one by one.
TEST(Sequential, EvalBatchNormReluPoolEqualsTheLayersOneByOne) {
  Sequential m = batch_norm_pool_model();
  randomize_running_stats(m, 15);
  Tensor x = random_tensor({6, 1, 10, 10}, 16);
  Tensor expected = eval_one_by_one(m, x);
  EXPECT_EQ(m.forward(x, Mode::kEval).to_vector(), expected.to_vector());
}

// Training runs ReLU then max-pool as max-pool then ReLU, BatchNorm then ReLU in one pass, and
// BatchNorm2d, ReLU, max-pool as one: the output, the parameter gradients, the running
// statistics and the input gradient are those of the layers one by one, bit for bit, also
// when backward stops inside a fused pair or block.
TEST(Sequential, TrainingStepEqualsTheLayersOneByOne) {
  Tensor x = random_tensor({6, 1, 10, 10}, 12);
  Tensor d_out = random_tensor({6, 7}, 13);
  const struct {
    Sequential (*make)();
    std::vector<size_t> down_to;  // some between the two layers of a pair
  } models[] = {{fusable_model, {0, 2, 3, 5, 6, 7}},
                {batch_norm_pool_model, {0, 1, 2, 3}},
                {overlapping_pool_model, {0, 1, 2, 3}}};
  for (const auto& model : models)
    for (size_t down_to : model.down_to) {
      Sequential fused = model.make(), plain = model.make();
      auto got = step_as_a_model(fused, x, d_out, down_to);
      auto want = step_one_by_one(plain, x, d_out, down_to);
      ASSERT_EQ(got.size(), want.size());
      for (size_t k = 0; k < got.size(); ++k)
        EXPECT_EQ(got[k], want[k]) << "down_to=" << down_to << " result " << k;
    }
}

// `bn` in small: two 3x3 convolutions of 8 channels on 18 x 18 planes, each followed by
// BatchNorm2d and ReLU, the second block pooled. With a batch of 6, the second convolution's
// backward runs F(4x4, 3x3) on AVX-512 machines: it takes its output gradient sample by sample
// from the block after it (Conv2dBackwardFusion::fill) and the ReLU before it on its input
// gradient (relu_in).
Sequential two_conv_blocks_model() {
  Sequential m;
  m.add(Conv2d({.in_channels = 1, .out_channels = 8, .kernel = 3, .padding = 1}))
      .add(BatchNorm2d({.num_features = 8}))
      .add(ReLU())
      .add(Conv2d({.in_channels = 8, .out_channels = 8, .kernel = 3, .padding = 1}))
      .add(BatchNorm2d({.num_features = 8}))
      .add(ReLU())
      .add(MaxPool2d({.kernel = 2}))
      .add(Flatten())
      .add(Linear({.in_features = 8 * 9 * 9, .out_features = 7}));
  m.build({1, 18, 18});
  m.init(Init::kPyTorch, 21);
  return m;
}

// `basic`'s convolutions in small: the second one's output gradient, pooled, is three quarters
// zeros (the sparse backward runs, with the first one's ReLU on its input gradient).
Sequential two_convs_model() {
  Sequential m;
  m.add(Conv2d({.in_channels = 1, .out_channels = 8, .kernel = 3}))
      .add(ReLU())
      .add(Conv2d({.in_channels = 8, .out_channels = 8, .kernel = 3}))
      .add(ReLU())
      .add(MaxPool2d({.kernel = 2}))
      .add(Flatten())
      .add(Linear({.in_features = 8 * 8 * 8, .out_features = 7}));
  m.build({1, 20, 20});
  m.init(Init::kPyTorch, 24);
  return m;
}

// A convolution's backward with the layers around it done inside (its output gradient made
// sample by sample by the BatchNorm2d, ReLU, MaxPool2d after it; the ReLU before it applied to
// its input gradient) gives the values of the layers one by one, bit for bit, wherever the
// backward stops, with and without the input gradient.
TEST(Sequential, ConvolutionBackwardWithItsNeighboursEqualsTheLayersOneByOne) {
  Tensor x = random_tensor({6, 1, 18, 18}, 22);
  Tensor d_out = random_tensor({6, 7}, 23);
  Tensor x20 = random_tensor({6, 1, 20, 20}, 25);
  for (size_t down_to : {0, 1, 2}) {
    Sequential fused = two_convs_model(), plain = two_convs_model();
    EXPECT_EQ(step_as_a_model(fused, x20, d_out, down_to),
              step_one_by_one(plain, x20, d_out, down_to))
        << "two convolutions, down_to=" << down_to;
  }
  for (size_t down_to : {0, 1, 2, 3, 4, 6})
    for (bool input_grad : {true, false}) {
      Sequential fused = two_conv_blocks_model(), plain = two_conv_blocks_model();
      auto got = step_as_a_model(fused, x, d_out, down_to, input_grad);
      auto want = step_one_by_one(plain, x, d_out, down_to);
      ASSERT_EQ(got.size(), want.size());
      if (!input_grad && down_to != 1 && down_to != 2 && down_to != 4) {  // Conv2d, MaxPool2d
        EXPECT_TRUE(got.back().empty()) << "down_to=" << down_to;
        got.pop_back();
        want.pop_back();
      }
      for (size_t k = 0; k < got.size(); ++k)
        EXPECT_EQ(got[k], want[k]) << "down_to=" << down_to << " result " << k;
    }
}

// In training, Flatten hands its input's storage on instead of copying it, and the backward
// pass hands it back: a backward that stops above the Flatten followed by a whole step, a
// second backward after one forward, and a Flatten as the first or the last layer (which
// copy) all give the layers' values one by one.
TEST(Sequential, FlattenWithoutACopyGivesTheLayersValues) {
  Tensor x = random_tensor({6, 1, 10, 10}, 12);
  Tensor d_out = random_tensor({6, 7}, 13);
  Tensor other_x = random_tensor({6, 1, 10, 10}, 19);  // leaves other values in the buffers
  Sequential plain = fusable_model(), m = fusable_model();
  step_one_by_one(plain, other_x, d_out, 7);
  plain.zero_grad();
  const auto want = step_one_by_one(plain, x, d_out, 0);
  m.forward(other_x, Mode::kTrain);
  m.backward(d_out, 7);
  m.zero_grad();
  EXPECT_EQ(step_as_a_model(m, x, d_out, 0), want);
  m.zero_grad();
  EXPECT_EQ(m.backward(d_out, 0).to_vector(), want.back());
  const auto params = m.params();
  for (size_t k = 0; k < params.size(); ++k)
    EXPECT_EQ(params[k].param->grad.to_vector(), want[k + 1]) << params[k].name;

  Sequential first, first_plain;
  for (Sequential* f : {&first, &first_plain}) {
    f->add(Flatten()).add(Linear({.in_features = 100, .out_features = 7}));
    f->build({1, 10, 10});
    f->init(Init::kPyTorch, 18);
  }
  EXPECT_EQ(step_as_a_model(first, x, d_out, 0), step_one_by_one(first_plain, x, d_out, 0));

  // A Flatten as the last layer copies: the output the forward returned stays as it was.
  Sequential last, last_plain;
  for (Sequential* f : {&last, &last_plain}) {
    f->add(Conv2d({.in_channels = 1, .out_channels = 2, .kernel = 3})).add(Flatten());
    f->build({1, 10, 10});
    f->init(Init::kPyTorch, 19);
  }
  Tensor d_flat = random_tensor({6, 2 * 8 * 8}, 20);
  const Tensor& out = last.forward(x, Mode::kTrain);
  const std::vector<float> before = out.to_vector();
  last.backward(d_flat);
  EXPECT_EQ(out.to_vector(), before);
  last.zero_grad();
  EXPECT_EQ(step_as_a_model(last, x, d_flat, 0), step_one_by_one(last_plain, x, d_flat, 0));
}

// Without the input gradient (a training step), the last layer backward reaches gives its
// parameter gradients alone (Conv2d, Linear) or nothing (no parameters); every parameter
// gradient is the full backward's, bit for bit, and the result is empty.
TEST(Sequential, BackwardWithoutTheInputGradientKeepsTheParameterGradients) {
  Tensor x = random_tensor({6, 1, 10, 10}, 12);
  Tensor d_out = random_tensor({6, 7}, 13);
  for (size_t down_to : {0, 2, 3, 7}) {  // Conv2d, MaxPool2d (inside a pair), Conv2d, Linear
    Sequential fast = fusable_model(), plain = fusable_model();
    auto got = step_as_a_model(fast, x, d_out, down_to, false);
    auto want = step_one_by_one(plain, x, d_out, down_to);
    EXPECT_TRUE(got.back().empty()) << "down_to=" << down_to;
    got.pop_back();
    want.pop_back();
    EXPECT_EQ(got, want) << "down_to=" << down_to;
  }
}

TEST(Sequential, BackwardNeedsATrainingForward) {
  Sequential m = small_cnn();
  Tensor x = random_tensor({2, 1, 6, 5}, 3);
  Tensor eval_out = m.forward(x, Mode::kEval);
  EXPECT_EQ(m.forward(x, Mode::kTrain).to_vector(), eval_out.to_vector());  // no dropout/BN
  m.forward(x, Mode::kEval);
  Tensor d(eval_out.shape());
  EXPECT_THAT(error_of([&] { m.backward(d); }), HasSubstr("after a forward in eval mode"));
}

TEST(Sequential, BackwardBeforeForward) {
  Sequential m = small_cnn();
  Tensor d({1, 4});
  EXPECT_THAT(error_of([&] { m.backward(d); }), HasSubstr("backward called before forward"));
}

}  // namespace
}  // namespace scratchnet
