// Tests for the element-wise activations: ReLU, LeakyReLU, Tanh, Sigmoid.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/layers/leaky_relu.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/layers/sigmoid.h"
#include "scratchnet/layers/tanh.h"
#include "support/error.h"
#include "support/gradcheck.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::FloatEq;
using ::testing::FloatNear;
using ::testing::HasSubstr;

Tensor random_tensor(const Shape& shape, uint64_t seed, float low = -2.0f, float high = 2.0f) {
  Tensor t(shape);
  Rng rng(seed);
  for (float& v : t) v = rng.uniform(low, high);
  return t;
}

// Values in [0.1, 2] with random signs: far from the kink of ReLU and LeakyReLU at 0.
std::vector<double> away_from_zero(size_t n, uint64_t seed) {
  std::vector<double> v = testing::random_doubles(n, seed, 0.1, 2.0);
  Rng signs(seed + 1000);
  for (double& x : v)
    if (signs.uniform() < 0.5f) x = -x;
  return v;
}

// Each case wraps one activation's layer and kernels behind the same signatures, so the
// typed tests below run the same checks on all four.
struct ReLUCase {
  static ReLU make() { return ReLU(); }
  template <typename T>
  static void forward(T* out, const T* in, int64_t n) {
    relu_forward(out, in, n);
  }
  template <typename T>
  static void backward(T* d_in, const T* d_out, const T* in, const T* /*out*/, int64_t n) {
    relu_backward(d_in, d_out, in, n);
  }
  static std::vector<double> inputs(size_t n, uint64_t seed) { return away_from_zero(n, seed); }
};

constexpr float kTestSlope = 0.25f;

struct LeakyReLUCase {
  static LeakyReLU make() { return LeakyReLU({.negative_slope = kTestSlope}); }
  template <typename T>
  static void forward(T* out, const T* in, int64_t n) {
    leaky_relu_forward(out, in, n, kTestSlope);
  }
  template <typename T>
  static void backward(T* d_in, const T* d_out, const T* in, const T* /*out*/, int64_t n) {
    leaky_relu_backward(d_in, d_out, in, n, kTestSlope);
  }
  static std::vector<double> inputs(size_t n, uint64_t seed) { return away_from_zero(n, seed); }
};

struct TanhCase {
  static Tanh make() { return Tanh(); }
  template <typename T>
  static void forward(T* out, const T* in, int64_t n) {
    tanh_forward(out, in, n);
  }
  template <typename T>
  static void backward(T* d_in, const T* d_out, const T* /*in*/, const T* out, int64_t n) {
    tanh_backward(d_in, d_out, out, n);
  }
  static std::vector<double> inputs(size_t n, uint64_t seed) {
    return testing::random_doubles(n, seed, -2.5, 2.5);
  }
};

struct SigmoidCase {
  static Sigmoid make() { return Sigmoid(); }
  template <typename T>
  static void forward(T* out, const T* in, int64_t n) {
    sigmoid_forward(out, in, n);
  }
  template <typename T>
  static void backward(T* d_in, const T* d_out, const T* /*in*/, const T* out, int64_t n) {
    sigmoid_backward(d_in, d_out, out, n);
  }
  static std::vector<double> inputs(size_t n, uint64_t seed) {
    return testing::random_doubles(n, seed, -4.0, 4.0);
  }
};

template <typename Case>
class ActivationTest : public ::testing::Test {};
using Cases = ::testing::Types<ReLUCase, LeakyReLUCase, TanhCase, SigmoidCase>;
TYPED_TEST_SUITE(ActivationTest, Cases);

TYPED_TEST(ActivationTest, GradientMatchesFiniteDifferences) {
  using Case = TypeParam;
  // Element-wise, so the shape only sets the count; these cover a single element, batch > 1
  // and odd, non-square sizes.
  for (const Shape& shape : {Shape{1, 1}, Shape{3, 5}, Shape{2, 3, 2, 5}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t n = shape_numel(shape);
    std::vector<double> x = Case::inputs(static_cast<size_t>(n), 11 + n), d_x;
    testing::check_gradients(
        [&](std::vector<double>& out) {
          out.resize(x.size());
          Case::forward(out.data(), x.data(), n);
        },
        [&](const std::vector<double>& d_out) {
          std::vector<double> y(x.size());
          Case::forward(y.data(), x.data(), n);
          Case::backward(d_x.data(), d_out.data(), x.data(), y.data(), n);
        },
        {{"in", &x, &d_x}});
  }
}

TYPED_TEST(ActivationTest, LayerMatchesFloatKernelsAndOverwritesInputGradient) {
  using Case = TypeParam;
  auto layer = Case::make();
  const Shape shape{3, 2, 5, 7};
  Tensor in = random_tensor(shape, 1), out, d_out = random_tensor(shape, 2, -1.0f, 1.0f);
  layer.forward(out, in, Mode::kTrain);
  ASSERT_EQ(out.shape(), shape);
  std::vector<float> want(in.numel());
  Case::forward(want.data(), in.data(), in.numel());
  EXPECT_EQ(out.to_vector(), want);

  Tensor d_in = Tensor::full(shape, 7.0f);  // stale values that backward must overwrite
  layer.backward(d_in, d_out, in, out);
  std::vector<float> want_d_in(in.numel());
  Case::backward(want_d_in.data(), d_out.data(), in.data(), out.data(), in.numel());
  EXPECT_EQ(d_in.to_vector(), want_d_in);
  layer.backward(d_in, d_out, in, out);  // overwrites, so a second call gives the same
  EXPECT_EQ(d_in.to_vector(), want_d_in);

  Tensor fresh;  // backward sizes an empty gradient buffer itself
  layer.backward(fresh, d_out, in, out);
  EXPECT_EQ(fresh.shape(), shape);
  EXPECT_EQ(fresh.to_vector(), want_d_in);
}

TYPED_TEST(ActivationTest, KeepsAnyShapeAndHasNoParameters) {
  auto layer = TypeParam::make();
  EXPECT_EQ(layer.output_shape({4, 3, 28, 28}), (Shape{4, 3, 28, 28}));
  EXPECT_EQ(layer.output_shape({64, 128}), (Shape{64, 128}));
  EXPECT_EQ(layer.output_shape({5}), (Shape{5}));
  EXPECT_TRUE(layer.params().empty());
  EXPECT_TRUE(layer.buffers().empty());
}

TYPED_TEST(ActivationTest, RejectsGradientOfTheWrongShape) {
  auto layer = TypeParam::make();
  Tensor in = random_tensor({2, 3}, 3), out, d_in;
  layer.forward(out, in, Mode::kEval);
  Tensor d_out({3, 2});
  EXPECT_EQ(error_of([&] { layer.backward(d_in, d_out, in, out); }),
            layer.kind() + ": gradient of the output: expected shape (2, 3), got (3, 2)");
}

// ReLU ---------------------------------------------------------------------------------------

TEST(ReLU, ForwardAndBackwardByHand) {
  ReLU relu;
  Tensor in({2, 3}, {-2.0f, -0.5f, 0.0f, 0.5f, 3.0f, -0.0f}), out;
  relu.forward(out, in, Mode::kTrain);
  EXPECT_THAT(out.to_vector(), ElementsAre(0.0f, 0.0f, 0.0f, 0.5f, 3.0f, 0.0f));
  Tensor d_out({2, 3}, {1, 2, 3, 4, 5, 6}), d_in;
  relu.backward(d_in, d_out, in, out);
  // The gradient at exactly 0 is 0, as in PyTorch.
  EXPECT_THAT(d_in.to_vector(), ElementsAre(0.0f, 0.0f, 0.0f, 4.0f, 5.0f, 0.0f));
}

TEST(ReLU, PassesNaNThrough) {
  float nan = std::numeric_limits<float>::quiet_NaN(), out = 0.0f;
  relu_forward(&out, &nan, 1);
  EXPECT_TRUE(std::isnan(out));
}

TEST(ReLU, DescribeKindAndFlops) {
  ReLU relu;
  EXPECT_EQ(relu.kind(), "ReLU");
  EXPECT_EQ(relu.describe(), "ReLU");
  EXPECT_EQ(relu.flops({2, 3, 4}), 24);
}

// LeakyReLU ----------------------------------------------------------------------------------

TEST(LeakyReLU, ForwardAndBackwardByHand) {
  LeakyReLU leaky({.negative_slope = 0.25f});
  Tensor in({2, 3}, {-2.0f, -0.5f, 0.0f, 0.5f, 3.0f, -4.0f}), out;
  leaky.forward(out, in, Mode::kTrain);
  EXPECT_THAT(out.to_vector(), ElementsAre(-0.5f, -0.125f, 0.0f, 0.5f, 3.0f, -1.0f));
  Tensor d_out({2, 3}, {1, 2, 3, 4, 5, 6}), d_in;
  leaky.backward(d_in, d_out, in, out);
  // At exactly 0 the gradient is the negative slope, as in PyTorch.
  EXPECT_THAT(d_in.to_vector(), ElementsAre(0.25f, 0.5f, 0.75f, 4.0f, 5.0f, 1.5f));
}

TEST(LeakyReLU, DefaultSlopeIsPyTorchs) {
  LeakyReLU leaky;
  EXPECT_EQ(leaky.options().negative_slope, 0.01f);
  Tensor in({1, 2}, {-100.0f, 100.0f}), out;
  leaky.forward(out, in, Mode::kEval);
  EXPECT_THAT(out.to_vector(), ElementsAre(FloatEq(-1.0f), FloatEq(100.0f)));
}

TEST(LeakyReLU, DescribeKindAndFlops) {
  EXPECT_EQ(LeakyReLU().kind(), "LeakyReLU");
  EXPECT_EQ(LeakyReLU().describe(), "LeakyReLU(negative_slope=0.01)");
  EXPECT_EQ(LeakyReLU({.negative_slope = 0.2f}).describe(), "LeakyReLU(negative_slope=0.2)");
  EXPECT_EQ(LeakyReLU().flops({2, 3, 4}), 24);
}

TEST(LeakyReLU, RejectsNonFiniteSlope) {
  EXPECT_EQ(error_of([] { LeakyReLU({.negative_slope = std::nanf("")}); }),
            "LeakyReLU: negative_slope must be a finite number, got nan");
  EXPECT_THAT(
      error_of([] { LeakyReLU({.negative_slope = std::numeric_limits<float>::infinity()}); }),
      HasSubstr("LeakyReLU: negative_slope must be a finite number, got inf"));
  EXPECT_EQ(error_of([] { LeakyReLU({.negative_slope = -0.5f}); }), "(no error)");
}

// Tanh ---------------------------------------------------------------------------------------

TEST(Tanh, ForwardAndBackwardByHand) {
  // tanh(x) = (e^2x - 1) / (e^2x + 1): x = ln(3)/2 gives 2/4, x = ln(3) gives 8/10.
  const float a = 0.5f * std::log(3.0f), b = std::log(3.0f);
  Tanh tanh_layer;
  Tensor in({1, 6}, {0.0f, a, -a, b, 20.0f, -20.0f}), out;
  tanh_layer.forward(out, in, Mode::kTrain);
  EXPECT_THAT(out.to_vector(), ElementsAre(0.0f, FloatNear(0.5f, 1e-6f), FloatNear(-0.5f, 1e-6f),
                                           FloatNear(0.8f, 1e-6f), 1.0f, -1.0f));
  // 1 - y^2: 1, 0.75, 0.75, 0.36, 0, 0.
  Tensor d_out({1, 6}, {2, 2, 2, 2, 2, 2}), d_in;
  tanh_layer.backward(d_in, d_out, in, out);
  EXPECT_THAT(d_in.to_vector(), ElementsAre(2.0f, FloatNear(1.5f, 1e-5f), FloatNear(1.5f, 1e-5f),
                                            FloatNear(0.72f, 1e-5f), 0.0f, 0.0f));
}

TEST(Tanh, DescribeKindAndFlops) {
  EXPECT_EQ(Tanh().kind(), "Tanh");
  EXPECT_EQ(Tanh().describe(), "Tanh");
  EXPECT_EQ(Tanh().flops({2, 3, 4}), 24 * 4);
}

// Sigmoid ------------------------------------------------------------------------------------

TEST(Sigmoid, ForwardAndBackwardByHand) {
  // sigmoid(ln 3) = 1 / (1 + 1/3) = 3/4; sigmoid(-ln 3) = 1/4.
  const float a = std::log(3.0f);
  Sigmoid sigmoid;
  Tensor in({2, 3}, {0.0f, a, -a, 200.0f, -200.0f, -1000.0f}), out;
  sigmoid.forward(out, in, Mode::kTrain);
  // Huge negative inputs give exactly 0, not NaN.
  EXPECT_THAT(out.to_vector(), ElementsAre(0.5f, FloatNear(0.75f, 1e-6f), FloatNear(0.25f, 1e-6f),
                                           1.0f, 0.0f, 0.0f));
  // y (1 - y): 1/4, 3/16, 3/16, 0, 0, 0.
  Tensor d_out({2, 3}, {4, 4, 4, 4, 4, 4}), d_in;
  sigmoid.backward(d_in, d_out, in, out);
  EXPECT_THAT(d_in.to_vector(), ElementsAre(1.0f, FloatNear(0.75f, 1e-5f), FloatNear(0.75f, 1e-5f),
                                            0.0f, 0.0f, 0.0f));
}

TEST(Sigmoid, DescribeKindAndFlops) {
  EXPECT_EQ(Sigmoid().kind(), "Sigmoid");
  EXPECT_EQ(Sigmoid().describe(), "Sigmoid");
  EXPECT_EQ(Sigmoid().flops({2, 3, 4}), 24 * 4);
}

}  // namespace
}  // namespace scratchnet
