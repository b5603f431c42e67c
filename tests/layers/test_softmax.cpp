// Tests for Softmax and LogSoftmax.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/layers/log_softmax.h"
#include "scratchnet/layers/softmax.h"
#include "support/error.h"
#include "support/gradcheck.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::FloatEq;
using ::testing::FloatNear;
using ::testing::HasSubstr;

Tensor random_tensor(const Shape& shape, uint64_t seed, float low, float high) {
  Tensor t(shape);
  Rng rng(seed);
  for (float& v : t) v = rng.uniform(low, high);
  return t;
}

// Both layers behind one set of names so the typed tests run the same checks on each.
struct SoftmaxCase {
  static Softmax make() { return Softmax(); }
  template <typename T>
  static void forward(T* out, const T* in, int64_t n, int64_t f) {
    softmax_forward(out, in, n, f);
  }
  template <typename T>
  static void backward(T* d_in, const T* d_out, const T* out, int64_t n, int64_t f) {
    softmax_backward(d_in, d_out, out, n, f);
  }
};

struct LogSoftmaxCase {
  static LogSoftmax make() { return LogSoftmax(); }
  template <typename T>
  static void forward(T* out, const T* in, int64_t n, int64_t f) {
    log_softmax_forward(out, in, n, f);
  }
  template <typename T>
  static void backward(T* d_in, const T* d_out, const T* out, int64_t n, int64_t f) {
    log_softmax_backward(d_in, d_out, out, n, f);
  }
};

template <typename Case>
class SoftmaxLayerTest : public ::testing::Test {};
using Cases = ::testing::Types<SoftmaxCase, LogSoftmaxCase>;
TYPED_TEST_SUITE(SoftmaxLayerTest, Cases);

TYPED_TEST(SoftmaxLayerTest, GradientMatchesFiniteDifferences) {
  using Case = TypeParam;
  struct Config {
    int64_t n, f;
    double range;
  };
  // A single feature (constant output), batch > 1, odd widths, and widely spread logits.
  for (Config c :
       {Config{1, 1, 3}, Config{1, 5, 3}, Config{3, 7, 3}, Config{4, 10, 3}, Config{2, 6, 30}}) {
    SCOPED_TRACE(::testing::Message() << "n=" << c.n << " f=" << c.f << " range=" << c.range);
    std::vector<double> x =
        testing::random_doubles(static_cast<size_t>(c.n * c.f), 3 + c.f, -c.range, c.range);
    std::vector<double> d_x;
    testing::check_gradients(
        [&](std::vector<double>& out) {
          out.resize(x.size());
          Case::forward(out.data(), x.data(), c.n, c.f);
        },
        [&](const std::vector<double>& d_out) {
          std::vector<double> y(x.size());
          Case::forward(y.data(), x.data(), c.n, c.f);
          Case::backward(d_x.data(), d_out.data(), y.data(), c.n, c.f);
        },
        {{"in", &x, &d_x}});
  }
}

TYPED_TEST(SoftmaxLayerTest, LayerMatchesFloatKernelsAndOverwritesInputGradient) {
  using Case = TypeParam;
  auto layer = Case::make();
  const Shape shape{5, 11};
  Tensor in = random_tensor(shape, 1, -4.0f, 4.0f), out;
  Tensor d_out = random_tensor(shape, 2, -1.0f, 1.0f);
  layer.forward(out, in, Mode::kTrain);
  ASSERT_EQ(out.shape(), shape);
  std::vector<float> want(in.numel());
  Case::forward(want.data(), in.data(), 5, 11);
  EXPECT_EQ(out.to_vector(), want);

  Tensor d_in = Tensor::full(shape, 7.0f);  // stale values that backward must overwrite
  layer.backward(d_in, d_out, in, out);
  std::vector<float> want_d_in(in.numel());
  Case::backward(want_d_in.data(), d_out.data(), out.data(), 5, 11);
  EXPECT_EQ(d_in.to_vector(), want_d_in);

  Tensor fresh;  // backward sizes an empty gradient buffer itself
  layer.backward(fresh, d_out, in, out);
  EXPECT_EQ(fresh.shape(), shape);
  EXPECT_EQ(fresh.to_vector(), want_d_in);
}

TYPED_TEST(SoftmaxLayerTest, RejectsInputsThatAreNotNByF) {
  auto layer = TypeParam::make();
  const std::string kind = layer.kind();
  const std::string expects = kind + ": expects a 2-D input (N, F) with F >= 1, taken over dim 1";
  EXPECT_EQ(error_of([&] {
              layer.output_shape({2, 3, 4});
            }),
            expects + ", got input of shape (2, 3, 4)");
  EXPECT_EQ(error_of([&] { layer.output_shape({6}); }), expects + ", got input of shape (6)");
  EXPECT_EQ(error_of([&] { layer.output_shape({2, 0}); }), expects + ", got input of shape (2, 0)");
  EXPECT_EQ(layer.output_shape({64, 10}), (Shape{64, 10}));
  Tensor in({2, 1, 5}), out;
  EXPECT_THAT(error_of([&] { layer.forward(out, in, Mode::kEval); }),
              HasSubstr(expects + ", got input of shape (2, 1, 5)"));
}

TYPED_TEST(SoftmaxLayerTest, RejectsGradientOfTheWrongShape) {
  auto layer = TypeParam::make();
  Tensor in = random_tensor({2, 3}, 3, -1.0f, 1.0f), out, d_in, d_out({2, 4});
  layer.forward(out, in, Mode::kEval);
  EXPECT_EQ(error_of([&] { layer.backward(d_in, d_out, in, out); }),
            layer.kind() + ": gradient of the output: expected shape (2, 3), got (2, 4)");
}

TYPED_TEST(SoftmaxLayerTest, FlopsAndNoParameters) {
  auto layer = TypeParam::make();
  EXPECT_EQ(layer.flops({3, 4}), 60);
  EXPECT_TRUE(layer.params().empty());
  EXPECT_TRUE(layer.buffers().empty());
}

// Softmax -------------------------------------------------------------------------------------

TEST(Softmax, ForwardByHand) {
  // exp of (0, ln 2, ln 3, ln 4) is (1, 2, 3, 4), which sums to 10; equal logits share evenly;
  // a single feature always gets 1.
  Softmax softmax;
  Tensor in({2, 4}, {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f), -3, -3, -3, -3}), out;
  softmax.forward(out, in, Mode::kEval);
  EXPECT_THAT(out.to_vector(),
              ElementsAre(FloatNear(0.1f, 1e-6f), FloatNear(0.2f, 1e-6f), FloatNear(0.3f, 1e-6f),
                          FloatNear(0.4f, 1e-6f), 0.25f, 0.25f, 0.25f, 0.25f));
  Tensor single({3, 1}, {-5, 0, 1000}), single_out;
  softmax.forward(single_out, single, Mode::kEval);
  EXPECT_THAT(single_out.to_vector(), ElementsAre(1.0f, 1.0f, 1.0f));
}

TEST(Softmax, HugeLogitsStayFiniteAndExact) {
  Softmax softmax;
  Tensor in({3, 2}, {1000, -1000, 1000, 1000, -1000, -1000}), out;
  softmax.forward(out, in, Mode::kEval);
  EXPECT_THAT(out.to_vector(), ElementsAre(1.0f, 0.0f, 0.5f, 0.5f, 0.5f, 0.5f));
}

TEST(Softmax, BackwardByHand) {
  // y = (1/4, 3/4) from logits (0, ln 3); d_out = (2, 1): sum(d_out * y) = 5/4, so
  // d_in = (1/4 * (2 - 5/4), 3/4 * (1 - 5/4)) = (3/16, -3/16).
  Softmax softmax;
  Tensor in({1, 2}, {0.0f, std::log(3.0f)}), out, d_in;
  softmax.forward(out, in, Mode::kTrain);
  Tensor d_out({1, 2}, {2, 1});
  softmax.backward(d_in, d_out, in, out);
  EXPECT_THAT(d_in.to_vector(), ElementsAre(FloatNear(0.1875f, 1e-6f), FloatNear(-0.1875f, 1e-6f)));
}

TEST(Softmax, RowsSumToOneAndGradientRowsToZero) {
  Softmax softmax;
  Tensor in = random_tensor({6, 9}, 4, -20.0f, 20.0f), out, d_in;
  Tensor d_out = random_tensor({6, 9}, 5, -1.0f, 1.0f);
  softmax.forward(out, in, Mode::kTrain);
  softmax.backward(d_in, d_out, in, out);
  for (int64_t i = 0; i < 6; ++i) {
    double sum = 0, d_sum = 0;
    for (int64_t j = 0; j < 9; ++j) {
      EXPECT_GE(out[i * 9 + j], 0.0f);
      sum += out[i * 9 + j];
      d_sum += d_in[i * 9 + j];
    }
    EXPECT_NEAR(sum, 1.0, 1e-6) << "row " << i;
    EXPECT_NEAR(d_sum, 0.0, 1e-6) << "row " << i;
  }
}

TEST(Softmax, DescribeAndKind) {
  EXPECT_EQ(Softmax().kind(), "Softmax");
  EXPECT_EQ(Softmax().describe(), "Softmax(dim=1)");
}

// LogSoftmax ----------------------------------------------------------------------------------

TEST(LogSoftmax, ForwardByHand) {
  // log of (0.1, 0.2, 0.3, 0.4) for logits (0, ln 2, ln 3, ln 4); log(1/4) for equal logits.
  LogSoftmax log_softmax;
  Tensor in({2, 4}, {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f), 7, 7, 7, 7}), out;
  log_softmax.forward(out, in, Mode::kEval);
  EXPECT_THAT(out.to_vector(),
              ElementsAre(FloatNear(-2.3025851f, 1e-6f), FloatNear(-1.6094379f, 1e-6f),
                          FloatNear(-1.2039728f, 1e-6f), FloatNear(-0.9162907f, 1e-6f),
                          FloatNear(-1.3862944f, 1e-6f), FloatNear(-1.3862944f, 1e-6f),
                          FloatNear(-1.3862944f, 1e-6f), FloatNear(-1.3862944f, 1e-6f)));
}

TEST(LogSoftmax, HugeLogitsStayFiniteAndExact) {
  LogSoftmax log_softmax;
  Tensor in({3, 2}, {1000, -1000, 1000, 1000, -1000, -1000}), out;
  log_softmax.forward(out, in, Mode::kEval);
  const float log_half = -std::log(2.0f);
  EXPECT_THAT(out.to_vector(), ElementsAre(0.0f, -2000.0f, FloatEq(log_half), FloatEq(log_half),
                                           FloatEq(log_half), FloatEq(log_half)));
}

TEST(LogSoftmax, BackwardByHand) {
  // softmax = (1/4, 3/4) for logits (0, ln 3); d_out = (2, 1) sums to 3, so
  // d_in = (2 - 3/4, 1 - 9/4) = (5/4, -5/4).
  LogSoftmax log_softmax;
  Tensor in({1, 2}, {0.0f, std::log(3.0f)}), out, d_in;
  log_softmax.forward(out, in, Mode::kTrain);
  Tensor d_out({1, 2}, {2, 1});
  log_softmax.backward(d_in, d_out, in, out);
  EXPECT_THAT(d_in.to_vector(), ElementsAre(FloatNear(1.25f, 1e-6f), FloatNear(-1.25f, 1e-6f)));
}

TEST(LogSoftmax, IsTheLogOfSoftmax) {
  Tensor in = random_tensor({4, 7}, 6, -10.0f, 10.0f), y, log_y;
  Softmax().forward(y, in, Mode::kEval);
  LogSoftmax().forward(log_y, in, Mode::kEval);
  for (int64_t i = 0; i < in.numel(); ++i) {
    EXPECT_LE(log_y[i], 0.0f);
    EXPECT_NEAR(std::exp(log_y[i]), y[i], 1e-6f) << i;
  }
}

TEST(LogSoftmax, DescribeAndKind) {
  EXPECT_EQ(LogSoftmax().kind(), "LogSoftmax");
  EXPECT_EQ(LogSoftmax().describe(), "LogSoftmax(dim=1)");
}

}  // namespace
}  // namespace scratchnet
