#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/layers/max_pool2d.h"
#include "scratchnet/parallel.h"
#include "scratchnet/rng.h"
#include "support/error.h"
#include "support/gradcheck.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::error_of;
using ::testing::HasSubstr;

Pool2dDims dims_for(const Shape& in, int64_t k, int64_t stride, int64_t padding) {
  return pool2d_dims("MaxPool2d", in, k, stride, padding);
}

// Runs the float kernels on `in` and returns out; argmax and d_in (for d_out) on request.
std::vector<float> pool(const std::vector<float>& in, const Pool2dDims& d,
                        std::vector<int32_t>* argmax = nullptr,
                        const std::vector<float>* d_out = nullptr,
                        std::vector<float>* d_in = nullptr) {
  std::vector<float> out(static_cast<size_t>(d.n * d.c * d.oh * d.ow));
  std::vector<int32_t> idx(out.size());
  max_pool2d_forward(out.data(), idx.data(), in.data(), d);
  if (argmax) *argmax = idx;
  if (d_out) {
    d_in->assign(in.size(), -99.0f);  // must be overwritten
    max_pool2d_backward(d_in->data(), d_out->data(), idx.data(), d);
  }
  return out;
}

TEST(MaxPool2d, ForwardAndBackwardByHandWithTies) {
  // One 4x4 plane, kernel 2, stride 2. Window (0,0) holds 1 -2 / 4 4: the tie between the two
  // 4s goes to the first in row-major order, position 4. Window (1,1) holds 6 6 / 6 -7: three
  // tied 6s, the first is at (2,2) = 10.
  std::vector<float> in = {1,  -2, 0,  3,  //
                           4,  4,  -1, 2,  //
                           -3, 5,  6,  6,  //
                           0,  2,  6,  -7};
  Pool2dDims d = dims_for({1, 1, 4, 4}, 2, 2, 0);
  std::vector<int32_t> argmax;
  std::vector<float> d_out = {1, 2, 3, 4}, d_in;
  EXPECT_THAT(pool(in, d, &argmax, &d_out, &d_in), ElementsAre(4, 3, 5, 6));
  EXPECT_THAT(argmax, ElementsAre(4, 3, 9, 10));
  EXPECT_THAT(d_in, ElementsAre(0, 0, 0, 2,  //
                                1, 0, 0, 0,  //
                                0, 3, 4, 0,  //
                                0, 0, 0, 0));
}

TEST(MaxPool2d, PaddingIsMinusInfinity) {
  // A 3x3 plane of negative numbers, kernel 2, stride 2, padding 1: OH = OW = (3+2-2)/2+1 = 2.
  // The windows cover rows {-1,0} / {1,2} and columns {-1,0} / {1,2}; a zero padding would win
  // the three border windows.
  std::vector<float> in = {-1, -2, -3,  //
                           -4, -5, -6,  //
                           -7, -8, -9};
  Pool2dDims d = dims_for({1, 1, 3, 3}, 2, 2, 1);
  ASSERT_EQ(d.oh, 2);
  ASSERT_EQ(d.ow, 2);
  std::vector<int32_t> argmax;
  std::vector<float> d_out = {1, 2, 3, 4}, d_in;
  EXPECT_THAT(pool(in, d, &argmax, &d_out, &d_in), ElementsAre(-1, -2, -4, -5));
  EXPECT_THAT(argmax, ElementsAre(0, 1, 3, 4));
  EXPECT_THAT(d_in, ElementsAre(1, 2, 0,  //
                                3, 4, 0,  //
                                0, 0, 0));
}

TEST(MaxPool2d, OverlappingWindowsAccumulateTheGradient) {
  // 5x5, kernel 3, stride 2: OH = OW = 2, and the four windows share the centre (2,2), which
  // holds the largest value, so it wins all four and collects 1+2+3+4 = 10.
  std::vector<float> in(25);
  for (int i = 0; i < 25; ++i) in[i] = static_cast<float>(i % 7);  // at most 6
  in[12] = 50;
  Pool2dDims d = dims_for({1, 1, 5, 5}, 3, 2, 0);
  std::vector<int32_t> argmax;
  std::vector<float> d_out = {1, 2, 3, 4}, d_in;
  EXPECT_THAT(pool(in, d, &argmax, &d_out, &d_in), ElementsAre(50, 50, 50, 50));
  EXPECT_THAT(argmax, ElementsAre(12, 12, 12, 12));
  std::vector<float> want(25, 0.0f);
  want[12] = 10;
  EXPECT_THAT(d_in, ElementsAreArray(want));
}

TEST(MaxPool2d, OddNonSquarePlanesArePooledSeparately) {
  // (2, 2, 3, 5), kernel 2, stride 2: OH = 1, OW = 2; the last row and column are dropped.
  // Plane p holds 100p + s(10y + x) with s = +1 for even p (max at the window's bottom right)
  // and s = -1 for odd p (max at its top left).
  std::vector<float> in(2 * 2 * 3 * 5);
  for (int p = 0; p < 4; ++p)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 5; ++x)
        in[p * 15 + y * 5 + x] = static_cast<float>(100 * p + (p % 2 ? -1 : 1) * (10 * y + x));
  Pool2dDims d = dims_for({2, 2, 3, 5}, 2, 2, 0);
  ASSERT_EQ(d.oh, 1);
  ASSERT_EQ(d.ow, 2);
  std::vector<int32_t> argmax;
  EXPECT_THAT(pool(in, d, &argmax), ElementsAre(11, 13, 100, 98, 211, 213, 300, 298));
  EXPECT_THAT(argmax, ElementsAre(6, 8, 0, 2, 6, 8, 0, 2));
}

TEST(MaxPool2d, NanWinsAndAllMinusInfinityPicksTheFirstElement) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> in = {1,   9, -inf, -inf,  //
                           nan, 2, -inf, -inf};
  Pool2dDims d = dims_for({1, 1, 2, 4}, 2, 2, 0);
  std::vector<int32_t> argmax;
  std::vector<float> out = pool(in, d, &argmax);
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_EQ(out[1], -inf);
  EXPECT_THAT(argmax, ElementsAre(4, 2));
}

// Values k * 0.05 for k = -n/2 .. n/2, shuffled: every two differ by at least 0.05, so no
// finite-difference step (1e-6) can change which element wins a window.
std::vector<double> distinct_values(size_t n, uint64_t seed) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.05 * (static_cast<double>(i) - 0.5 * n);
  Rng rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  return v;
}

struct GradCase {
  Shape in;
  int64_t k, stride, padding;
};

// The float kernel has a vectorised path for the 2x2 window with stride 2 (16 outputs at a
// time); the double kernel always scans element by element. On values with many ties, NaNs,
// infinities and signed zeros, and widths around the vector length (odd ones drop the last
// column), both give the same values and the same argmax.
TEST(MaxPool2d, FloatKernelMatchesTheScalarScanOnTiesNansAndEdgeWidths) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float pool_values[] = {1.0f, 2.0f, 2.0f, -1.0f, 0.0f, -0.0f, inf, -inf, nan, 3.5f};
  Rng rng(77);
  for (const Shape& shape :
       {Shape{2, 3, 4, 4}, Shape{1, 2, 5, 31}, Shape{1, 1, 2, 32}, Shape{3, 2, 7, 33},
        Shape{1, 1, 3, 2}, Shape{2, 1, 6, 65}, Shape{1, 4, 26, 26}, Shape{1, 1, 9, 47}}) {
    SCOPED_TRACE(shape_str(shape));
    Pool2dDims d = dims_for(shape, 2, 2, 0);
    const int64_t n = shape_numel(shape);
    std::vector<float> in(static_cast<size_t>(n));
    for (float& v : in) v = pool_values[static_cast<int>(rng.uniform() * 10) % 10];
    std::vector<double> in_d(in.begin(), in.end());
    const size_t outs = static_cast<size_t>(d.n * d.c * d.oh * d.ow);
    std::vector<float> out(outs);
    std::vector<double> out_d(outs);
    std::vector<int32_t> idx(outs, -1), idx_d(outs, -2);
    max_pool2d_forward(out.data(), idx.data(), in.data(), d);
    max_pool2d_forward(out_d.data(), idx_d.data(), in_d.data(), d);
    EXPECT_EQ(idx, idx_d);
    for (size_t i = 0; i < outs; ++i) {
      if (std::isnan(out_d[i])) {
        EXPECT_TRUE(std::isnan(out[i])) << "at " << i;
      } else {
        EXPECT_EQ(out[i], static_cast<float>(out_d[i])) << "at " << i;
        EXPECT_EQ(std::signbit(out[i]), std::signbit(out_d[i])) << "at " << i;
      }
    }
    std::vector<float> out_only(outs);  // no argmax requested
    max_pool2d_forward(out_only.data(), nullptr, in.data(), d);
    EXPECT_EQ(std::memcmp(out_only.data(), out.data(), outs * sizeof(float)), 0);

    // Backward: the same d_in, signed zeros included (0 + -0 is +0 in both).
    std::vector<float> d_out(outs);
    for (float& v : d_out) v = pool_values[static_cast<int>(rng.uniform() * 6) % 6];
    std::vector<double> d_out_d(d_out.begin(), d_out.end());
    std::vector<float> d_in(static_cast<size_t>(n), 7.0f);
    std::vector<double> d_in_d(static_cast<size_t>(n), 7.0);
    max_pool2d_backward(d_in.data(), d_out.data(), idx.data(), d);
    max_pool2d_backward(d_in_d.data(), d_out_d.data(), idx.data(), d);
    for (size_t i = 0; i < d_in.size(); ++i) {
      EXPECT_EQ(d_in[i], static_cast<float>(d_in_d[i])) << "at " << i;
      EXPECT_EQ(std::signbit(d_in[i]), std::signbit(d_in_d[i])) << "at " << i;
    }
  }
}

TEST(MaxPool2d, FloatBackwardFollowsAnyArgmax) {
  // An argmax that points outside its window (not what forward writes) still sends the
  // gradient where it points, as the element-by-element loop does.
  Pool2dDims d = dims_for({1, 1, 2, 4}, 2, 2, 0);
  std::vector<float> d_out = {1.5f, -2.0f}, d_in(8, 9.0f);
  std::vector<int32_t> argmax = {5, 5};  // window 0 is {0, 1, 4, 5}, window 1 is {2, 3, 6, 7}
  max_pool2d_backward(d_in.data(), d_out.data(), argmax.data(), d);
  EXPECT_THAT(d_in, ElementsAre(0, 0, 0, 0, 0, -0.5f, 0, 0));
}

TEST(MaxPool2d, GradientCheckInDouble) {
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
    std::vector<double> x = distinct_values(static_cast<size_t>(shape_numel(c.in)), seed++);
    std::vector<double> d_x;
    std::vector<int32_t> argmax(static_cast<size_t>(d.n * d.c * d.oh * d.ow));
    auto forward = [&](std::vector<double>& out) {
      out.resize(argmax.size());
      max_pool2d_forward(out.data(), argmax.data(), x.data(), d);
    };
    auto backward = [&](const std::vector<double>& d_out) {
      max_pool2d_backward(d_x.data(), d_out.data(), argmax.data(), d);
    };
    testing::check_gradients(forward, backward, {{"in", &x, &d_x}});
  }
}

std::vector<float> random_floats(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = rng.uniform(-1.0f, 1.0f);
  return v;
}

TEST(MaxPool2d, LayerMatchesTheFloatKernelAndBackwardOverwrites) {
  MaxPool2d layer({.kernel = 3, .stride = 2, .padding = 1});
  const Shape in_shape = {3, 4, 9, 8};
  Tensor in(in_shape, random_floats(shape_numel(in_shape), 11));
  Shape out_shape = layer.output_shape(in_shape);
  ASSERT_EQ(out_shape, (Shape{3, 4, 5, 4}));
  Tensor out(out_shape), d_out(out_shape, random_floats(shape_numel(out_shape), 12));
  layer.forward(out, in, Mode::kTrain);

  Pool2dDims d = dims_for(in_shape, 3, 2, 1);
  std::vector<float> want_d_in;
  std::vector<float> d_out_v = d_out.to_vector();
  std::vector<float> want = pool(in.to_vector(), d, nullptr, &d_out_v, &want_d_in);
  EXPECT_EQ(out.to_vector(), want);

  Tensor d_in = Tensor::full(in_shape, std::numeric_limits<float>::quiet_NaN());
  layer.backward(d_in, d_out, in, out);
  EXPECT_EQ(d_in.to_vector(), want_d_in);
  layer.backward(d_in, d_out, in, out);  // overwrites, does not add
  EXPECT_EQ(d_in.to_vector(), want_d_in);
}

TEST(MaxPool2d, ResultsDoNotDependOnTheThreadCount) {
  const int saved = num_threads();
  const Shape in_shape = {2, 5, 7, 6};
  std::vector<float> in = random_floats(shape_numel(in_shape), 21);
  Pool2dDims d = dims_for(in_shape, 3, 2, 1);
  std::vector<float> d_out = random_floats(d.n * d.c * d.oh * d.ow, 22);
  std::vector<std::vector<float>> outs, d_ins;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    std::vector<float> d_in;
    outs.push_back(pool(in, d, nullptr, &d_out, &d_in));
    d_ins.push_back(d_in);
  }
  set_num_threads(saved);
  for (size_t i = 1; i < outs.size(); ++i) {
    EXPECT_EQ(outs[i], outs[0]);
    EXPECT_EQ(d_ins[i], d_ins[0]);
  }
}

TEST(MaxPool2d, BackwardNeedsAForwardOnTheSameShape) {
  MaxPool2d layer({.kernel = 2});
  Tensor in({1, 1, 4, 4}), out({1, 1, 2, 2}), d_in({1, 1, 4, 4});
  EXPECT_EQ(error_of([&] { layer.backward(d_in, out, in, out); }),
            "MaxPool2d: backward needs a forward on an input of shape (1, 1, 4, 4) first, the "
            "last forward saw none");
  Tensor in6({1, 1, 6, 6}), out6({1, 1, 3, 3});
  layer.forward(out6, in6, Mode::kTrain);
  EXPECT_EQ(error_of([&] { layer.backward(d_in, out, in, out); }),
            "MaxPool2d: backward needs a forward on an input of shape (1, 1, 4, 4) first, the "
            "last forward saw (1, 1, 6, 6)");
}

TEST(MaxPool2d, ForwardChecksTheOutputShape) {
  MaxPool2d layer({.kernel = 2});
  Tensor in({1, 1, 4, 4}), out({1, 1, 3, 3});
  EXPECT_THAT(error_of([&] { layer.forward(out, in, Mode::kEval); }),
              HasSubstr("MaxPool2d output: expected shape (1, 1, 2, 2), got (1, 1, 3, 3)"));
}

TEST(MaxPool2d, OutputShapes) {
  EXPECT_EQ(MaxPool2d({.kernel = 2}).output_shape({64, 32, 26, 26}), (Shape{64, 32, 13, 13}));
  EXPECT_EQ(MaxPool2d({.kernel = 2}).output_shape({1, 64, 11, 11}), (Shape{1, 64, 5, 5}));
  EXPECT_EQ(MaxPool2d({.kernel = 3, .stride = 2, .padding = 1}).output_shape({2, 3, 5, 8}),
            (Shape{2, 3, 3, 4}));
  EXPECT_EQ(MaxPool2d({.kernel = 3, .stride = 1, .padding = 1}).output_shape({0, 3, 7, 2}),
            (Shape{0, 3, 7, 2}));
  // Padding lets an input smaller than the kernel through: 1 + 2*1 >= 3.
  EXPECT_EQ(MaxPool2d({.kernel = 3, .padding = 1}).output_shape({1, 1, 1, 1}), (Shape{1, 1, 1, 1}));
}

TEST(MaxPool2d, StrideZeroMeansStrideEqualsKernel) {
  MaxPool2d layer({.kernel = 3});
  EXPECT_EQ(layer.options().stride, 3);
  EXPECT_EQ(layer.describe(), "MaxPool2d(kernel=3, stride=3, padding=0)");
  EXPECT_EQ(layer.output_shape({1, 1, 9, 10}), (Shape{1, 1, 3, 3}));
}

TEST(MaxPool2d, BadOptions) {
  EXPECT_EQ(error_of([] { MaxPool2d({.kernel = 0}); }),
            "MaxPool2d: kernel must be at least 1, got 0");
  EXPECT_EQ(error_of([] { MaxPool2d({.kernel = -2}); }),
            "MaxPool2d: kernel must be at least 1, got -2");
  EXPECT_EQ(error_of([] { MaxPool2d({.kernel = 2, .stride = -1}); }),
            "MaxPool2d: stride must be at least 1 (or 0 for stride = kernel), got -1");
  EXPECT_EQ(error_of([] { MaxPool2d({.kernel = 2, .padding = -1}); }),
            "MaxPool2d: padding must be at least 0, got -1");
  EXPECT_EQ(error_of([] { MaxPool2d({.kernel = 3, .padding = 2}); }),
            "MaxPool2d: padding must be at most kernel / 2 = 1, got 2");
  EXPECT_EQ(error_of([] { MaxPool2d({.kernel = 1, .padding = 1}); }),
            "MaxPool2d: padding must be at most kernel / 2 = 0, got 1");
  EXPECT_NO_THROW(MaxPool2d({.kernel = 4, .stride = 1, .padding = 2}));
}

TEST(MaxPool2d, BadInputShapes) {
  MaxPool2d layer({.kernel = 3});
  EXPECT_EQ(error_of([&] {
              layer.output_shape({1, 28, 28});
            }),
            "MaxPool2d: expects a 4-D input (N, C, H, W), got input of shape (1, 28, 28)");
  EXPECT_EQ(error_of([&] {
              layer.output_shape({1, 0, 8, 8});
            }),
            "MaxPool2d: expects (N, C, H, W) with C, H and W at least 1, got input of shape "
            "(1, 0, 8, 8)");
  EXPECT_EQ(error_of([&] {
              layer.output_shape({1, 1, 2, 8});
            }),
            "MaxPool2d: expects H and W of at least 3 (kernel 3, padding 0), got input of shape "
            "(1, 1, 2, 8)");
  EXPECT_EQ(error_of([&] {
              MaxPool2d({.kernel = 4, .padding = 1}).output_shape({1, 1, 9, 1});
            }),
            "MaxPool2d: expects H and W of at least 2 (kernel 4, padding 1), got input of shape "
            "(1, 1, 9, 1)");
  EXPECT_EQ(error_of([&] {
              layer.output_shape({1, 1, 50000, 50000});
            }),
            "MaxPool2d: expects H * W at most 2147483647 (argmax positions are 32-bit), got "
            "input of shape (1, 1, 50000, 50000)");
  EXPECT_THAT(error_of([&] { layer.flops({3, 3}); }), HasSubstr("MaxPool2d: expects a 4-D"));
}

TEST(MaxPool2d, DescribeFlopsAndNoParams) {
  MaxPool2d layer({.kernel = 2, .stride = 2, .padding = 0});
  EXPECT_EQ(layer.kind(), "MaxPool2d");
  EXPECT_EQ(layer.describe(), "MaxPool2d(kernel=2, stride=2, padding=0)");
  EXPECT_EQ(MaxPool2d({.kernel = 3, .stride = 1, .padding = 1}).describe(),
            "MaxPool2d(kernel=3, stride=1, padding=1)");
  // (64, 32, 26, 26) -> (64, 32, 13, 13), 3 comparisons per output.
  EXPECT_EQ(layer.flops({64, 32, 26, 26}), 64 * 32 * 13 * 13 * 3);
  // (2, 3, 5, 8), kernel 3 stride 2 padding 1 -> (2, 3, 3, 4), 8 comparisons per output.
  EXPECT_EQ(MaxPool2d({.kernel = 3, .stride = 2, .padding = 1}).flops({2, 3, 5, 8}),
            2 * 3 * 3 * 4 * 8);
  EXPECT_TRUE(layer.params().empty());
  EXPECT_TRUE(layer.buffers().empty());
}

}  // namespace
}  // namespace scratchnet
