#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/layers/avg_pool2d.h"
#include "scratchnet/parallel.h"
#include "scratchnet/rng.h"
#include "support/error.h"
#include "support/gradcheck.h"

namespace scratchnet {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using testing::error_of;
using ::testing::FloatEq;
using ::testing::HasSubstr;
using ::testing::Pointwise;

Pool2dDims dims_for(const Shape& in, int64_t k, int64_t stride, int64_t padding) {
  return pool2d_dims("AvgPool2d", in, k, stride, padding);
}

// Runs the float kernels on `in` and returns out; d_in for d_out on request.
std::vector<float> pool(const std::vector<float>& in, const Pool2dDims& d,
                        const std::vector<float>* d_out = nullptr,
                        std::vector<float>* d_in = nullptr) {
  std::vector<float> out(static_cast<size_t>(d.n * d.c * d.oh * d.ow));
  avg_pool2d_forward(out.data(), in.data(), d);
  if (d_out) {
    d_in->assign(in.size(), -99.0f);  // must be overwritten
    avg_pool2d_backward(d_in->data(), d_out->data(), d);
  }
  return out;
}

TEST(AvgPool2d, ForwardAndBackwardByHand) {
  // One 4x4 plane holding 0..15, kernel 2, stride 2:
  // (0+1+4+5)/4 = 2.5, (2+3+6+7)/4 = 4.5, (8+9+12+13)/4 = 10.5, (10+11+14+15)/4 = 12.5.
  std::vector<float> in(16);
  for (int i = 0; i < 16; ++i) in[i] = static_cast<float>(i);
  Pool2dDims d = dims_for({1, 1, 4, 4}, 2, 2, 0);
  std::vector<float> d_out = {4, 8, 12, 16}, d_in;
  EXPECT_THAT(pool(in, d, &d_out, &d_in), ElementsAre(2.5, 4.5, 10.5, 12.5));
  // Each output spreads d_out / 4 over its own 2x2 block.
  EXPECT_THAT(d_in, ElementsAre(1, 1, 2, 2,  //
                                1, 1, 2, 2,  //
                                3, 3, 4, 4,  //
                                3, 3, 4, 4));
}

TEST(AvgPool2d, PaddingCountsInTheDivisor) {
  // A 3x3 plane holding 1..9, kernel 2, stride 2, padding 1: windows cover rows {-1,0} / {1,2}
  // and columns {-1,0} / {1,2}, and every sum is divided by 4 (count_include_pad):
  // 1/4, (2+3)/4, (4+7)/4, (5+6+8+9)/4.
  std::vector<float> in = {1, 2, 3,  //
                           4, 5, 6,  //
                           7, 8, 9};
  Pool2dDims d = dims_for({1, 1, 3, 3}, 2, 2, 1);
  ASSERT_EQ(d.oh, 2);
  ASSERT_EQ(d.ow, 2);
  std::vector<float> d_out = {4, 8, 12, 16}, d_in;
  EXPECT_THAT(pool(in, d, &d_out, &d_in), ElementsAre(0.25, 1.25, 2.75, 7));
  EXPECT_THAT(d_in, ElementsAre(1, 2, 2,  //
                                3, 4, 4,  //
                                3, 4, 4));
}

TEST(AvgPool2d, SamePaddingOfOnes) {
  // Ones, kernel 3, stride 1, padding 1 on a 3x4 plane: a window holds 4 real elements at a
  // corner, 6 along an edge, 9 inside, always divided by 9.
  std::vector<float> in(12, 1.0f);
  Pool2dDims d = dims_for({1, 1, 3, 4}, 3, 1, 1);
  std::vector<float> want = {4, 6, 6, 4,  //
                             6, 9, 9, 6,  //
                             4, 6, 6, 4};
  for (float& v : want) v /= 9;
  EXPECT_THAT(pool(in, d), Pointwise(FloatEq(), want));
}

TEST(AvgPool2d, OverlappingWindowsAccumulateTheGradient) {
  // 5x5, kernel 3, stride 2: OH = OW = 2. Row and column 2 lie in both window rows/columns,
  // so with d_out = 1 an element gets (windows covering it) / 9: 4/9 at the centre, 2/9 on
  // the rest of row and column 2, 1/9 elsewhere.
  std::vector<float> in(25, 0.0f), d_out(4, 1.0f), d_in;
  Pool2dDims d = dims_for({1, 1, 5, 5}, 3, 2, 0);
  pool(in, d, &d_out, &d_in);
  std::vector<float> want(25);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) want[y * 5 + x] = (y == 2 ? 2.0f : 1.0f) * (x == 2 ? 2 : 1) / 9;
  EXPECT_THAT(d_in, Pointwise(FloatEq(), want));
}

TEST(AvgPool2d, OddNonSquarePlanesArePooledSeparately) {
  // (2, 2, 3, 5), kernel 2, stride 2: OH = 1, OW = 2; the last row and column are dropped.
  // Plane p holds 100p + 10y + x, so window (0, j) averages 100p + {0, 1, 10, 11} + 2j:
  // 100p + 5.5 + 2j.
  std::vector<float> in(2 * 2 * 3 * 5);
  for (int p = 0; p < 4; ++p)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 5; ++x) in[p * 15 + y * 5 + x] = static_cast<float>(100 * p + 10 * y + x);
  Pool2dDims d = dims_for({2, 2, 3, 5}, 2, 2, 0);
  ASSERT_EQ(d.oh, 1);
  ASSERT_EQ(d.ow, 2);
  EXPECT_THAT(pool(in, d), ElementsAre(5.5, 7.5, 105.5, 107.5, 205.5, 207.5, 305.5, 307.5));
}

struct GradCase {
  Shape in;
  int64_t k, stride, padding;
};

TEST(AvgPool2d, GradientCheckInDouble) {
  const std::vector<GradCase> cases = {
      {{2, 3, 4, 6}, 2, 2, 0},  // batch > 1, non-square
      {{2, 2, 5, 7}, 2, 2, 0},  // odd sizes: last row and column dropped
      {{1, 2, 7, 6}, 3, 2, 1},  // overlapping windows and padding
      {{2, 1, 5, 5}, 3, 1, 1},  // stride 1: each element in up to nine windows
      {{1, 3, 6, 5}, 2, 3, 1},  // stride > kernel: some elements in no window
      {{3, 1, 4, 3}, 4, 1, 2},  // even kernel with padding = kernel / 2
      {{2, 2, 1, 1}, 1, 1, 0},  // 1x1
  };
  uint64_t seed = 1;
  for (const GradCase& c : cases) {
    SCOPED_TRACE(shape_str(c.in) + " k=" + std::to_string(c.k) + " s=" + std::to_string(c.stride) +
                 " p=" + std::to_string(c.padding));
    Pool2dDims d = dims_for(c.in, c.k, c.stride, c.padding);
    std::vector<double> x = testing::random_doubles(static_cast<size_t>(shape_numel(c.in)), seed++);
    std::vector<double> d_x;
    auto forward = [&](std::vector<double>& out) {
      out.resize(static_cast<size_t>(d.n * d.c * d.oh * d.ow));
      avg_pool2d_forward(out.data(), x.data(), d);
    };
    auto backward = [&](const std::vector<double>& d_out) {
      avg_pool2d_backward(d_x.data(), d_out.data(), d);
    };
    testing::check_gradients(forward, backward, {{"in", &x, &d_x}});
  }
}

TEST(AvgPool2d, DoubleKernelAgreesWithFloat) {
  const Shape in_shape = {2, 3, 7, 6};
  Pool2dDims d = dims_for(in_shape, 3, 2, 1);
  std::vector<double> x = testing::random_doubles(static_cast<size_t>(shape_numel(in_shape)), 5);
  std::vector<float> xf(x.begin(), x.end());
  std::vector<double> out(static_cast<size_t>(d.n * d.c * d.oh * d.ow));
  avg_pool2d_forward(out.data(), x.data(), d);
  std::vector<float> outf = pool(xf, d);
  EXPECT_THAT(std::vector<double>(outf.begin(), outf.end()), Pointwise(DoubleNear(1e-6), out));
}

std::vector<float> random_floats(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = rng.uniform(-1.0f, 1.0f);
  return v;
}

TEST(AvgPool2d, LayerMatchesTheFloatKernelAndBackwardOverwrites) {
  AvgPool2d layer({.kernel = 3, .stride = 2, .padding = 1});
  const Shape in_shape = {3, 4, 9, 8};
  Tensor in(in_shape, random_floats(shape_numel(in_shape), 11));
  Shape out_shape = layer.output_shape(in_shape);
  ASSERT_EQ(out_shape, (Shape{3, 4, 5, 4}));
  Tensor out(out_shape), d_out(out_shape, random_floats(shape_numel(out_shape), 12));
  layer.forward(out, in, Mode::kTrain);

  Pool2dDims d = dims_for(in_shape, 3, 2, 1);
  std::vector<float> want_d_in;
  std::vector<float> d_out_v = d_out.to_vector();
  std::vector<float> want = pool(in.to_vector(), d, &d_out_v, &want_d_in);
  EXPECT_EQ(out.to_vector(), want);

  Tensor d_in = Tensor::full(in_shape, std::numeric_limits<float>::quiet_NaN());
  layer.backward(d_in, d_out, in, out);
  EXPECT_EQ(d_in.to_vector(), want_d_in);
  layer.backward(d_in, d_out, in, out);  // overwrites, does not add
  EXPECT_EQ(d_in.to_vector(), want_d_in);
}

TEST(AvgPool2d, ResultsDoNotDependOnTheThreadCount) {
  const int saved = num_threads();
  const Shape in_shape = {2, 5, 7, 6};
  std::vector<float> in = random_floats(shape_numel(in_shape), 21);
  Pool2dDims d = dims_for(in_shape, 3, 2, 1);
  std::vector<float> d_out = random_floats(d.n * d.c * d.oh * d.ow, 22);
  std::vector<std::vector<float>> outs, d_ins;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    std::vector<float> d_in;
    outs.push_back(pool(in, d, &d_out, &d_in));
    d_ins.push_back(d_in);
  }
  set_num_threads(saved);
  for (size_t i = 1; i < outs.size(); ++i) {
    EXPECT_EQ(outs[i], outs[0]);
    EXPECT_EQ(d_ins[i], d_ins[0]);
  }
}

TEST(AvgPool2d, ForwardAndBackwardCheckShapes) {
  AvgPool2d layer({.kernel = 2});
  Tensor in({1, 1, 4, 4}), out({1, 1, 3, 3}), good_out({1, 1, 2, 2}), d_in({1, 1, 4, 5});
  EXPECT_EQ(error_of([&] { layer.forward(out, in, Mode::kEval); }),
            "AvgPool2d output: expected shape (1, 1, 2, 2), got (1, 1, 3, 3)");
  EXPECT_EQ(error_of([&] { layer.backward(d_in, out, in, good_out); }),
            "AvgPool2d d_out: expected shape (1, 1, 2, 2), got (1, 1, 3, 3)");
  EXPECT_EQ(error_of([&] { layer.backward(d_in, good_out, in, good_out); }),
            "AvgPool2d d_in: expected shape (1, 1, 4, 4), got (1, 1, 4, 5)");
}

TEST(AvgPool2d, OutputShapes) {
  EXPECT_EQ(AvgPool2d({.kernel = 2}).output_shape({64, 32, 26, 26}), (Shape{64, 32, 13, 13}));
  EXPECT_EQ(AvgPool2d({.kernel = 2}).output_shape({1, 64, 11, 11}), (Shape{1, 64, 5, 5}));
  EXPECT_EQ(AvgPool2d({.kernel = 3, .stride = 2, .padding = 1}).output_shape({2, 3, 5, 8}),
            (Shape{2, 3, 3, 4}));
  EXPECT_EQ(AvgPool2d({.kernel = 3, .padding = 1}).output_shape({1, 1, 1, 1}), (Shape{1, 1, 1, 1}));
}

TEST(AvgPool2d, StrideZeroMeansStrideEqualsKernel) {
  AvgPool2d layer({.kernel = 3});
  EXPECT_EQ(layer.options().stride, 3);
  EXPECT_EQ(layer.describe(), "AvgPool2d(kernel=3, stride=3, padding=0)");
  EXPECT_EQ(layer.output_shape({1, 1, 9, 10}), (Shape{1, 1, 3, 3}));
}

TEST(AvgPool2d, BadOptions) {
  EXPECT_EQ(error_of([] { AvgPool2d({.kernel = 0}); }),
            "AvgPool2d: kernel must be at least 1, got 0");
  EXPECT_EQ(error_of([] { AvgPool2d({.kernel = 2, .stride = -2}); }),
            "AvgPool2d: stride must be at least 1 (or 0 for stride = kernel), got -2");
  EXPECT_EQ(error_of([] { AvgPool2d({.kernel = 2, .padding = -1}); }),
            "AvgPool2d: padding must be at least 0, got -1");
  EXPECT_EQ(error_of([] { AvgPool2d({.kernel = 2, .padding = 2}); }),
            "AvgPool2d: padding must be at most kernel / 2 = 1, got 2");
  EXPECT_NO_THROW(AvgPool2d({.kernel = 2, .stride = 1, .padding = 1}));
}

TEST(AvgPool2d, BadInputShapes) {
  AvgPool2d layer({.kernel = 3});
  EXPECT_EQ(error_of([&] {
              layer.output_shape({4, 1, 28, 28, 1});
            }),
            "AvgPool2d: expects a 4-D input (N, C, H, W), got input of shape (4, 1, 28, 28, 1)");
  EXPECT_EQ(error_of([&] {
              layer.output_shape({1, 1, 8, 0});
            }),
            "AvgPool2d: expects (N, C, H, W) with C, H and W at least 1, got input of shape "
            "(1, 1, 8, 0)");
  EXPECT_EQ(error_of([&] {
              layer.output_shape({1, 1, 8, 2});
            }),
            "AvgPool2d: expects H and W of at least 3 (kernel 3, padding 0), got input of shape "
            "(1, 1, 8, 2)");
  EXPECT_THAT(error_of([&] { layer.flops({3}); }), HasSubstr("AvgPool2d: expects a 4-D"));
}

TEST(AvgPool2d, DescribeFlopsAndNoParams) {
  AvgPool2d layer({.kernel = 2, .stride = 2, .padding = 0});
  EXPECT_EQ(layer.kind(), "AvgPool2d");
  EXPECT_EQ(layer.describe(), "AvgPool2d(kernel=2, stride=2, padding=0)");
  EXPECT_EQ(AvgPool2d({.kernel = 3, .stride = 1, .padding = 1}).describe(),
            "AvgPool2d(kernel=3, stride=1, padding=1)");
  EXPECT_EQ(layer.flops({64, 32, 26, 26}), 64 * 32 * 13 * 13 * 4);
  EXPECT_EQ(AvgPool2d({.kernel = 3, .stride = 2, .padding = 1}).flops({2, 3, 5, 8}),
            2 * 3 * 3 * 4 * 9);
  EXPECT_TRUE(layer.params().empty());
  EXPECT_TRUE(layer.buffers().empty());
}

}  // namespace
}  // namespace scratchnet
