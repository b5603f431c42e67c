#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/layers/batch_norm2d.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/max_pool2d.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/parallel.h"
#include "support/error.h"
#include "support/gradcheck.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;

struct Case {
  int64_t n, c, h, w, oc, k, stride, padding;
  bool bias;
};

Conv2dOptions options_of(const Case& t) {
  return {.in_channels = t.c,
          .out_channels = t.oc,
          .kernel = t.k,
          .stride = t.stride,
          .padding = t.padding,
          .bias = t.bias};
}

Conv2dDims dims_of(const Case& t) { return conv2d_dims(options_of(t), {t.n, t.c, t.h, t.w}); }

std::string name_of(const Case& t) {
  return fmt::format("N={} C={} HxW={}x{} OC={} K={} stride={} padding={} bias={}", t.n, t.c, t.h,
                     t.w, t.oc, t.k, t.stride, t.padding, t.bias);
}

// Shapes covering every path of the kernels: K 1, 2, 3, 4 (generic) and 5, strides 1 to 3,
// padding 0 to 2 (including padding >= K), non-square inputs, batches and channels above 1.
const Case kCases[] = {
    {1, 1, 5, 5, 1, 3, 1, 0, true},  {3, 2, 7, 5, 3, 3, 1, 1, true},
    {2, 3, 7, 5, 2, 3, 2, 1, true},  {2, 2, 6, 7, 3, 3, 1, 2, false},
    {1, 2, 5, 4, 3, 5, 1, 2, true},  {2, 2, 7, 6, 2, 2, 2, 2, true},
    {1, 3, 8, 7, 2, 4, 3, 1, true},  {2, 3, 4, 5, 4, 1, 1, 0, true},
    {3, 2, 5, 7, 2, 3, 2, 2, false}, {1, 1, 3, 9, 2, 3, 1, 0, true},
};

// out[n, oc, y, x] straight from the definition in conv2d.h, testing bounds per element.
std::vector<double> direct_forward(const std::vector<double>& in, const std::vector<double>& w,
                                   const std::vector<double>* b, const Conv2dDims& d) {
  std::vector<double> out(d.n * d.oc * d.oh * d.ow);
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t o = 0; o < d.oc; ++o)
      for (int64_t y = 0; y < d.oh; ++y)
        for (int64_t x = 0; x < d.ow; ++x) {
          double sum = b ? (*b)[o] : 0.0;
          for (int64_t c = 0; c < d.c; ++c)
            for (int64_t i = 0; i < d.k; ++i)
              for (int64_t j = 0; j < d.k; ++j) {
                int64_t iy = y * d.stride + i - d.padding, ix = x * d.stride + j - d.padding;
                if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;
                sum += w[((o * d.c + c) * d.k + i) * d.k + j] *
                       in[((n * d.c + c) * d.h + iy) * d.w + ix];
              }
          out[((n * d.oc + o) * d.oh + y) * d.ow + x] = sum;
        }
  return out;
}

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

Tensor tensor_of(Shape shape, const std::vector<double>& v) {
  return Tensor(std::move(shape), to_float(v));
}

// ---- forward, worked by hand ----

TEST(Conv2d, ForwardIsCrossCorrelationWithBias) {
  // in 1..9 in a 3x3 plane, weight [[1, 2], [3, 4]], bias 0.5:
  // out[0, 0] = 1*1 + 2*2 + 3*4 + 4*5 + 0.5 = 37.5; out[0, 1] = 2 + 6 + 15 + 24 + 0.5 = 47.5;
  // out[1, 0] = 4 + 10 + 21 + 32 + 0.5 = 67.5;      out[1, 1] = 5 + 12 + 24 + 36 + 0.5 = 77.5.
  // (A flipped kernel, i.e. true convolution, would give 23.5 at [0, 0].)
  Conv2d conv({.in_channels = 1, .out_channels = 1, .kernel = 2});
  conv.weight().value = Tensor({1, 1, 2, 2}, {1, 2, 3, 4});
  conv.bias().value = Tensor({1}, {0.5f});
  Tensor in({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor out(conv.output_shape(in.shape()));
  conv.forward(out, in, Mode::kEval);
  EXPECT_EQ(out.shape(), Shape({1, 1, 2, 2}));
  EXPECT_THAT(out.to_vector(), ElementsAre(37.5f, 47.5f, 67.5f, 77.5f));
}

TEST(Conv2d, ForwardStride2Padding1SumsTheClippedWindows) {
  // A 3x3 box of ones over 1..9 padded by one zero on each side, every second window:
  // centred at (0, 0): 1 + 2 + 4 + 5 = 12; (0, 2): 2 + 3 + 5 + 6 = 16;
  //             (2, 0): 4 + 5 + 7 + 8 = 24; (2, 2): 5 + 6 + 8 + 9 = 28.
  Conv2d conv(
      {.in_channels = 1, .out_channels = 1, .kernel = 3, .stride = 2, .padding = 1, .bias = false});
  conv.weight().value.fill(1.0f);
  Tensor in({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor out(conv.output_shape(in.shape()));
  conv.forward(out, in, Mode::kEval);
  EXPECT_EQ(out.shape(), Shape({1, 1, 2, 2}));
  EXPECT_THAT(out.to_vector(), ElementsAre(12.0f, 16.0f, 24.0f, 28.0f));
}

TEST(Conv2d, ForwardMixesChannelsPerOutputChannel) {
  // 1x1 kernel on a (2, 1, 3) sample: channel 0 = [1, 2, 3], channel 1 = [10, 20, 30].
  // weight[0] = (1, 0.5), bias 0:  [1 + 5, 2 + 10, 3 + 15]        = [6, 12, 18]
  // weight[1] = (-1, 2),  bias 1:  [-1 + 20 + 1, -2 + 40 + 1, ...] = [20, 39, 58]
  // The second sample is the first times -1 (the bias does not scale).
  Conv2d conv({.in_channels = 2, .out_channels = 2, .kernel = 1});
  conv.weight().value = Tensor({2, 2, 1, 1}, {1, 0.5f, -1, 2});
  conv.bias().value = Tensor({2}, {0, 1});
  Tensor in({2, 2, 1, 3}, {1, 2, 3, 10, 20, 30, -1, -2, -3, -10, -20, -30});
  Tensor out(conv.output_shape(in.shape()));
  conv.forward(out, in, Mode::kTrain);
  EXPECT_EQ(out.shape(), Shape({2, 2, 1, 3}));
  EXPECT_THAT(out.to_vector(), ElementsAre(6, 12, 18, 20, 39, 58, -6, -12, -18, -18, -37, -56));
}

// ---- forward against the definition, on every shape ----

TEST(Conv2d, ForwardMatchesTheDefinitionOnEveryShape) {
  for (const Case& t : kCases) {
    SCOPED_TRACE(name_of(t));
    Conv2dDims d = dims_of(t);
    auto in = testing::random_doubles(d.n * d.c * d.h * d.w, 1);
    auto w = testing::random_doubles(d.oc * d.c * d.k * d.k, 2);
    auto b = testing::random_doubles(d.oc, 3);
    auto want = direct_forward(in, w, t.bias ? &b : nullptr, d);

    std::vector<double> got(want.size(), 1e300);
    conv2d_forward_reference(got.data(), in.data(), w.data(), t.bias ? b.data() : nullptr, d);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-12) << "at " << i;

    auto inf = to_float(in), wf = to_float(w), bf = to_float(b);
    std::vector<float> gotf(want.size(), 1e30f);
    conv2d_forward_reference(gotf.data(), inf.data(), wf.data(), t.bias ? bf.data() : nullptr, d);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(gotf[i], want[i], 1e-5) << "at " << i;
  }
}

// ---- gradients ----

TEST(Conv2d, GradientsMatchFiniteDifferences) {
  for (const Case& t : kCases) {
    SCOPED_TRACE(name_of(t));
    Conv2dDims d = dims_of(t);
    auto in = testing::random_doubles(d.n * d.c * d.h * d.w, 11);
    auto w = testing::random_doubles(d.oc * d.c * d.k * d.k, 12);
    auto b = testing::random_doubles(d.oc, 13);
    std::vector<double> d_in, d_w, d_b;
    std::vector<testing::GradInput> inputs{{"in", &in, &d_in}, {"weight", &w, &d_w}};
    if (t.bias) inputs.push_back({"bias", &b, &d_b});
    testing::check_gradients(
        [&](std::vector<double>& out) {
          out.resize(d.n * d.oc * d.oh * d.ow);
          conv2d_forward_reference(out.data(), in.data(), w.data(), t.bias ? b.data() : nullptr, d);
        },
        [&](const std::vector<double>& d_out) {
          conv2d_backward_reference(d_in.data(), d_w.data(), t.bias ? d_b.data() : nullptr,
                                    d_out.data(), in.data(), w.data(), d);
        },
        inputs);
  }
}

TEST(Conv2d, BackwardOverwritesInputGradientAndAddsParameterGradients) {
  Case t{2, 3, 7, 5, 2, 3, 2, 1, true};
  Conv2dDims d = dims_of(t);
  auto in = testing::random_doubles(d.n * d.c * d.h * d.w, 21);
  auto w = testing::random_doubles(d.oc * d.c * d.k * d.k, 22);
  auto g = testing::random_doubles(d.n * d.oc * d.oh * d.ow, 23);
  std::vector<double> d_in0(in.size(), 0.0), d_w0(w.size(), 0.0), d_b0(d.oc, 0.0);
  conv2d_backward_reference(d_in0.data(), d_w0.data(), d_b0.data(), g.data(), in.data(), w.data(),
                            d);

  std::vector<double> d_in(in.size(), 1e6), d_w(w.size(), 1.0), d_b(d.oc, 1.0);
  conv2d_backward_reference(d_in.data(), d_w.data(), d_b.data(), g.data(), in.data(), w.data(), d);
  EXPECT_EQ(d_in, d_in0);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_DOUBLE_EQ(d_w[i], 1.0 + d_w0[i]);
  for (int64_t o = 0; o < d.oc; ++o) EXPECT_DOUBLE_EQ(d_b[o], 1.0 + d_b0[o]);
  EXPECT_NE(d_b0[0], 0.0);

  // Any output may be skipped without changing the others.
  std::vector<double> only_w(w.size(), 0.0), only_in(in.size(), 0.0), only_b(d.oc, 0.0);
  conv2d_backward_reference<double>(nullptr, only_w.data(), nullptr, g.data(), in.data(), w.data(),
                                    d);
  conv2d_backward_reference<double>(only_in.data(), nullptr, nullptr, g.data(), in.data(), w.data(),
                                    d);
  conv2d_backward_reference<double>(nullptr, nullptr, only_b.data(), g.data(), in.data(), w.data(),
                                    d);
  EXPECT_EQ(only_w, d_w0);
  EXPECT_EQ(only_in, d_in0);
  EXPECT_EQ(only_b, d_b0);
}

TEST(Conv2d, ReferenceKernelsGiveIdenticalBitsForAnyThreadCount) {
  for (const Case& t : {Case{5, 3, 9, 8, 4, 3, 1, 1, true}, Case{5, 3, 9, 8, 4, 3, 2, 0, true}}) {
    SCOPED_TRACE(name_of(t));
    Conv2dDims d = dims_of(t);
    auto in = to_float(testing::random_doubles(d.n * d.c * d.h * d.w, 31));
    auto w = to_float(testing::random_doubles(d.oc * d.c * d.k * d.k, 32));
    auto b = to_float(testing::random_doubles(d.oc, 33));
    auto g = to_float(testing::random_doubles(d.n * d.oc * d.oh * d.ow, 34));
    auto run = [&](int threads) {
      set_num_threads(threads);
      std::vector<float> out(g.size()), d_in(in.size()), d_w(w.size()), d_b(b.size());
      conv2d_forward_reference(out.data(), in.data(), w.data(), b.data(), d);
      conv2d_backward_reference(d_in.data(), d_w.data(), d_b.data(), g.data(), in.data(), w.data(),
                                d);
      std::vector<float> all = out;
      for (const auto* v : {&d_in, &d_w, &d_b}) all.insert(all.end(), v->begin(), v->end());
      return all;
    };
    int saved = num_threads();
    auto one = run(1), two = run(2), three = run(3);
    set_num_threads(saved);
    ASSERT_EQ(one.size(), two.size());
    EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0);
  }
}

TEST(Conv2d, KernelsRejectInconsistentDims) {
  Conv2dDims d = dims_of({1, 1, 5, 5, 1, 3, 1, 0, true});
  d.oh = 4;  // should be 3
  std::vector<float> buf(100);
  float* p = buf.data();
  EXPECT_THAT(error_of([&] { conv2d_forward_reference(p, p, p, p, d); }),
              HasSubstr("conv2d_forward_reference: inconsistent dims"));
  EXPECT_THAT(error_of([&] { conv2d_backward_reference(p, p, p, p, p, p, d); }),
              HasSubstr("conv2d_backward_reference: inconsistent dims"));
  EXPECT_THAT(error_of([&] { conv2d_forward(p, p, p, p, d); }),
              HasSubstr("conv2d_forward: inconsistent dims"));
  EXPECT_THAT(error_of([&] { conv2d_backward(p, p, p, p, p, p, d); }),
              HasSubstr("conv2d_backward: inconsistent dims"));
  // An input smaller than the kernel, even with an OH the formula would give (0).
  Conv2dDims small = dims_of({1, 1, 5, 5, 1, 3, 1, 0, true});
  small.h = 2;
  small.oh = 0;
  EXPECT_THAT(error_of([&] { conv2d_forward_reference(p, p, p, p, small); }),
              HasSubstr("conv2d_forward_reference: inconsistent dims: input (1, 1, 2, 5), output "
                        "(1, 1, 0, 3), kernel 3, stride 1, padding 0"));
  EXPECT_THAT(error_of([&] { conv2d_forward(p, p, p, p, small); }),
              HasSubstr("conv2d_forward: inconsistent dims: input (1, 1, 2, 5), output (1, 1, 0, "
                        "3), kernel 3, stride 1, padding 0"));
}

// ---- the fast float kernels ----

// Inputs of one case, drawn in float, with the reference results computed in double from the
// same values, and the sums of the magnitudes of the terms behind each result (the reference
// run on absolute values), which bound float rounding.
struct FastCase {
  Case t;
  Conv2dDims d;
  std::vector<float> in, w, b, g;
  std::vector<double> out, d_in, d_w, d_b;          // reference, in double
  std::vector<double> out_m, d_in_m, d_w_m, d_b_m;  // magnitudes
};

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

std::vector<double> abs_of(std::vector<double> v) {
  for (double& x : v) x = std::abs(x);
  return v;
}

// With keep > 1, about one output-gradient value in `keep` is nonzero (the others 0, as after
// max pooling), scattered.
FastCase make_fast_case(const Case& t, uint64_t seed, int keep = 1) {
  FastCase f{t, dims_of(t), {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  const Conv2dDims& d = f.d;
  f.in = to_float(testing::random_doubles(d.n * d.c * d.h * d.w, seed));
  f.w = to_float(testing::random_doubles(d.oc * d.c * d.k * d.k, seed + 1));
  f.b = to_float(testing::random_doubles(d.oc, seed + 2));
  f.g = to_float(testing::random_doubles(d.n * d.oc * d.oh * d.ow, seed + 3));
  for (size_t i = 0; keep > 1 && i < f.g.size(); ++i)
    if ((i * 2654435761u >> 7) % static_cast<size_t>(keep) != 0) f.g[i] = 0.0f;
  auto run = [&](const std::vector<double>& in, const std::vector<double>& w,
                 const std::vector<double>& b, const std::vector<double>& g,
                 std::vector<double>& out, std::vector<double>& d_in, std::vector<double>& d_w,
                 std::vector<double>& d_b) {
    out.assign(g.size(), 0.0);
    d_in.assign(in.size(), 0.0);
    d_w.assign(w.size(), 0.0);
    d_b.assign(b.size(), 0.0);
    conv2d_forward_reference(out.data(), in.data(), w.data(), t.bias ? b.data() : nullptr, d);
    conv2d_backward_reference(d_in.data(), d_w.data(), d_b.data(), g.data(), in.data(), w.data(),
                              d);
  };
  auto in = to_double(f.in), w = to_double(f.w), b = to_double(f.b), g = to_double(f.g);
  run(in, w, b, g, f.out, f.d_in, f.d_w, f.d_b);
  run(abs_of(in), abs_of(w), abs_of(b), abs_of(g), f.out_m, f.d_in_m, f.d_w_m, f.d_b_m);
  return f;
}

// |got - want| <= 1e-5 * magnitude, element by element (float rounding of the sums and, for
// Winograd, of its transforms: about 1.5e-7 measured for F(2x2, 3x3) on the models' layers,
// up to 4.1e-6 for F(4x4, 3x3) on these shapes).
void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& magnitude) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(std::abs(got[i] - want[i]), 1e-5 * magnitude[i])
        << what << " at " << i << ": got " << got[i] << ", want " << want[i];
}

// Runs the fast kernels on f; parameter gradients start from `start` to check they add.
void check_fast_case(const FastCase& f, float start) {
  const Conv2dDims& d = f.d;
  const float* bias = f.t.bias ? f.b.data() : nullptr;
  std::vector<float> out(f.out.size(), 1e30f);
  conv2d_forward(out.data(), f.in.data(), f.w.data(), bias, d);
  expect_close("out", out, f.out, f.out_m);

  std::vector<float> d_in(f.in.size(), 1e30f), d_w(f.w.size(), start), d_b(f.b.size(), start);
  conv2d_backward(d_in.data(), d_w.data(), d_b.data(), f.g.data(), f.in.data(), f.w.data(), d);
  expect_close("d_in", d_in, f.d_in, f.d_in_m);
  for (float& v : d_w) v -= start;
  for (float& v : d_b) v -= start;
  std::vector<double> d_w_m = f.d_w_m, d_b_m = f.d_b_m;  // the start value rounds too
  for (double& m : d_w_m) m += 2 * std::abs(start);
  for (double& m : d_b_m) m += 2 * std::abs(start);
  expect_close("d_weight", d_w, f.d_w, d_w_m);
  expect_close("d_bias", d_b, f.d_b, d_b_m);
}

// The reference's shapes, the reference models' layers at small batches (one input channel
// with a 3x3 kernel takes the direct kernels where the CPU has AVX-512), widths around the
// 16-column vectors, shapes for each stride-1 path (implicit products, Winograd), and shapes
// drawn at random: C, OC, H, W from 1, odd, non-square, K 1, 2, 3
// and 5, strides 1 to 3, padding 0 to 2 (including padding >= K - 1), batch 1 and more.
std::vector<Case> fast_cases() {
  std::vector<Case> cases(std::begin(kCases), std::end(kCases));
  const Case fixed[] = {
      {2, 1, 28, 28, 32, 3, 1, 0, true},
      {3, 32, 13, 13, 64, 3, 1, 0, true},
      {2, 1, 28, 28, 32, 3, 1, 1, true},
      {2, 32, 28, 28, 64, 3, 1, 1, false},
      {1, 1, 5, 17, 3, 3, 1, 2, true},
      {2, 1, 3, 16, 5, 3, 1, 0, false},
      {1, 1, 1, 1, 2, 3, 1, 1, true},
      {1, 1, 40, 33, 7, 3, 1, 1, true},
      {3, 5, 6, 6, 3, 1, 1, 0, true},
      {2, 4, 9, 7, 6, 1, 2, 0, false},
      {1, 2, 2, 3, 3, 5, 1, 2, true},
      {2, 3, 1, 7, 2, 3, 1, 1, true},
      {4, 2, 5, 5, 3, 2, 3, 2, true},
      {1, 1, 11, 11, 1, 5, 3, 0, true},
      {9, 3, 4, 4, 2, 3, 1, 1, true},
      {1, 6, 7, 9, 10, 3, 2, 1, true},
      {2, 9, 7, 6, 5, 5, 1, 2, true},
      {1, 8, 5, 9, 3, 2, 1, 1, false},
      {2, 12, 6, 5, 9, 1, 1, 0, true},
      {1, 8, 10, 10, 8, 3, 1, 0, true},
      {2, 16, 12, 12, 8, 5, 1, 4, true},
      {2, 10, 9, 11, 3, 3, 1, 2, true},
      {3, 8, 8, 8, 11, 3, 1, 1, true},
      // Winograd (rows of at least 6 tiles, 256 tiles in all): odd sizes (partial tiles),
      // rows of more than 16 tiles, two chunks of samples, each padding.
      {5, 8, 10, 24, 9, 3, 1, 1, true},
      {3, 9, 17, 27, 10, 3, 1, 0, false},
      {4, 16, 9, 25, 8, 3, 1, 2, true},
      {2, 8, 40, 37, 8, 3, 1, 1, true},
      {11, 8, 4, 24, 8, 3, 1, 1, true},
      // Winograd with rows of 6 to 8 tiles, odd numbers of tile rows and odd sizes (`basic`'s
      // second convolution first), and a weight gradient in 8 groups of 10 chunks. Up to 16
      // columns and 8 samples or more, F(4x4, 3x3) with the samples in the lanes: chunks of
      // 16 and 8, of 10, of 12 with padding 2, of 16 and 1; with 7 samples, F(2x2, 3x3) on
      // the input gradient's 13 columns (the forward has too few tiles).
      {24, 8, 13, 13, 8, 3, 1, 0, false},
      {10, 8, 16, 15, 8, 3, 1, 1, true},
      {12, 9, 13, 14, 10, 3, 1, 2, true},
      {17, 8, 11, 11, 9, 3, 1, 1, true},
      {7, 8, 13, 13, 8, 3, 1, 0, true},
      {30, 8, 24, 24, 8, 3, 1, 1, true},
      // F(4x4, 3x3) (16 columns or more): rows of more than 16 tiles, and of exactly 4.
      {3, 8, 6, 70, 8, 3, 1, 1, true},
      {4, 8, 18, 16, 9, 3, 1, 1, false},
      // Too few tiles for those (batches of one image): F(4x4, 3x3) one sample at a time, with
      // output channels a multiple of 16: `basic`'s and `bn`'s second convolutions, channels
      // not a multiple of 16, 48 outputs (a block of 32 and one of 16), odd sizes and each
      // padding, outputs of exactly 4x4; and 8 outputs, which the direct sums take.
      {1, 32, 13, 13, 64, 3, 1, 0, true},
      {1, 32, 28, 28, 64, 3, 1, 1, false},
      {2, 9, 7, 9, 32, 3, 1, 2, true},
      {1, 17, 12, 11, 48, 3, 1, 1, true},
      {1, 8, 6, 6, 16, 3, 1, 0, false},
      {2, 24, 9, 14, 16, 3, 1, 0, true},
      {1, 8, 10, 10, 8, 3, 1, 1, true},
  };
  cases.insert(cases.end(), std::begin(fixed), std::end(fixed));
  Rng rng(2024);
  auto pick = [&](int64_t lo, int64_t hi) {
    return lo +
           static_cast<int64_t>(rng.uniform() * static_cast<float>(hi - lo + 1)) % (hi - lo + 1);
  };
  const int64_t kernels[] = {1, 2, 3, 5};
  while (cases.size() < 80) {
    Case t{pick(1, 4),          pick(1, 6), pick(1, 12), pick(1, 12),    pick(1, 7),
           kernels[pick(0, 3)], pick(1, 3), pick(0, 2),  pick(0, 1) == 1};
    if (t.h + 2 * t.padding < t.k || t.w + 2 * t.padding < t.k) continue;
    cases.push_back(t);
  }
  return cases;
}

TEST(Conv2d, FastKernelsMatchTheReferenceOnManyShapes) {
  uint64_t seed = 100;
  for (const Case& t : fast_cases()) {
    SCOPED_TRACE(name_of(t));
    check_fast_case(make_fast_case(t, seed), seed % 2 ? 0.25f : 0.0f);
    seed += 4;
  }
}

// An output gradient with at most a quarter nonzero takes the sums over its nonzero values
// (3x3 kernels, 8 channels or more): `basic`'s second convolution, strides 2 and 3, padding 1
// and 2, channels not a multiple of 16 and more than two vectors of them, one sample; exactly
// a quarter nonzero, and a denser gradient (the other kernels).
TEST(Conv2d, FastBackwardOfAMostlyZeroGradientMatchesTheReference) {
  const std::pair<Case, int> cases[] = {
      {{3, 32, 13, 13, 64, 3, 1, 0, true}, 5}, {{2, 9, 10, 11, 7, 3, 2, 1, true}, 4},
      {{2, 40, 6, 7, 5, 3, 1, 2, false}, 6},   {{4, 16, 9, 9, 8, 3, 1, 1, true}, 8},
      {{1, 8, 20, 17, 3, 3, 3, 0, true}, 5},   {{2, 12, 8, 8, 16, 3, 1, 1, true}, 2},
  };
  uint64_t seed = 500;
  for (const auto& [t, keep] : cases) {
    SCOPED_TRACE(name_of(t) + fmt::format(" one in {} nonzero", keep));
    check_fast_case(make_fast_case(t, seed, keep), seed % 2 ? 0.5f : 0.0f);
    seed += 4;
  }
  // Exactly a quarter: every other value of every other row.
  const Case t{2, 8, 9, 9, 4, 3, 1, 0, true};
  FastCase f = make_fast_case(t, 77);
  const Conv2dDims& d = f.d;
  for (int64_t i = 0; i < static_cast<int64_t>(f.g.size()); ++i)
    if ((i / d.ow) % 2 || (i % d.ow) % 2) f.g[static_cast<size_t>(i)] = 0.0f;
  FastCase quarter = make_fast_case(t, 77);
  quarter.g = f.g;
  std::vector<double> g = to_double(f.g);
  quarter.d_in.assign(f.in.size(), 0.0);
  quarter.d_w.assign(f.w.size(), 0.0);
  quarter.d_b.assign(f.b.size(), 0.0);
  conv2d_backward_reference(quarter.d_in.data(), quarter.d_w.data(), quarter.d_b.data(), g.data(),
                            to_double(f.in).data(), to_double(f.w).data(), d);
  check_fast_case(quarter, 0.0f);

  // The same bits for any thread count.
  FastCase b = make_fast_case({5, 24, 11, 11, 10, 3, 1, 1, true}, 9, 5);
  auto run = [&](int threads) {
    set_num_threads(threads);
    std::vector<float> d_in(b.in.size()), d_w(b.w.size()), d_b(b.b.size());
    conv2d_backward(d_in.data(), d_w.data(), d_b.data(), b.g.data(), b.in.data(), b.w.data(), b.d);
    d_in.insert(d_in.end(), d_w.begin(), d_w.end());
    d_in.insert(d_in.end(), d_b.begin(), d_b.end());
    return d_in;
  };
  const int saved = num_threads();
  const auto one = run(1), two = run(2), three = run(3);
  set_num_threads(saved);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0);
}

TEST(Conv2d, FastBackwardSkipsAnyNullOutput) {
  // The general kernels, and Winograd F(4x4, 3x3), whose input gradient shares the weight
  // gradient's transforms.
  for (const Case& t : {Case{3, 2, 7, 5, 3, 3, 2, 1, true}, Case{3, 1, 9, 20, 4, 3, 1, 1, true},
                        Case{5, 8, 10, 24, 9, 3, 1, 1, true}}) {
    SCOPED_TRACE(name_of(t));
    FastCase f = make_fast_case(t, 7);
    const Conv2dDims& d = f.d;
    std::vector<float> d_in(f.in.size()), d_w(f.w.size()), d_b(f.b.size());
    conv2d_backward(d_in.data(), d_w.data(), d_b.data(), f.g.data(), f.in.data(), f.w.data(), d);
    EXPECT_NE(d_b[0], 0.0f);
    std::vector<float> only_in(d_in.size()), only_w(d_w.size()), only_b(d_b.size());
    conv2d_backward(only_in.data(), nullptr, nullptr, f.g.data(), f.in.data(), f.w.data(), d);
    conv2d_backward(nullptr, only_w.data(), nullptr, f.g.data(), f.in.data(), f.w.data(), d);
    conv2d_backward(nullptr, nullptr, only_b.data(), f.g.data(), f.in.data(), f.w.data(), d);
    EXPECT_EQ(only_in, d_in);
    EXPECT_EQ(only_w, d_w);
    EXPECT_EQ(only_b, d_b);
  }
}

TEST(Conv2d, FastKernelsGiveIdenticalBitsForAnyThreadCount) {
  // Batches below, at and above the thread counts, the direct kernels (C = 1, 3x3, stride 1),
  // a 1x1 kernel, weight-gradient groups that do not divide the batch, and Winograd with
  // two chunks of samples and with one (its products split instead), its weight gradient in
  // one group, in three and in eight groups of ten chunks.
  const Case cases[] = {
      {5, 3, 9, 8, 4, 3, 1, 1, true},     {5, 3, 9, 8, 4, 3, 2, 0, true},
      {1, 8, 20, 20, 16, 3, 1, 1, true},  {2, 1, 28, 28, 32, 3, 1, 0, true},
      {3, 1, 17, 30, 5, 3, 1, 2, true},   {1, 1, 28, 28, 32, 3, 1, 1, true},
      {7, 32, 13, 13, 64, 3, 1, 0, true}, {3, 16, 6, 6, 8, 1, 1, 0, false},
      {37, 4, 8, 8, 8, 3, 1, 1, true},    {11, 8, 4, 24, 8, 3, 1, 1, true},
      {1, 8, 34, 34, 8, 3, 1, 1, true},   {8, 8, 13, 13, 8, 3, 1, 0, true},
      {24, 8, 13, 13, 8, 3, 1, 0, true},  {30, 8, 24, 24, 8, 3, 1, 1, true},
      {1, 32, 13, 13, 64, 3, 1, 0, true}, {3, 8, 9, 9, 48, 3, 1, 1, true},
  };
  for (const Case& t : cases) {
    SCOPED_TRACE(name_of(t));
    Conv2dDims d = dims_of(t);
    auto in = to_float(testing::random_doubles(d.n * d.c * d.h * d.w, 31));
    auto w = to_float(testing::random_doubles(d.oc * d.c * d.k * d.k, 32));
    auto b = to_float(testing::random_doubles(d.oc, 33));
    auto g = to_float(testing::random_doubles(d.n * d.oc * d.oh * d.ow, 34));
    auto run = [&](int threads) {
      set_num_threads(threads);
      std::vector<float> out(g.size()), d_in(in.size()), d_w(w.size()), d_b(b.size());
      conv2d_forward(out.data(), in.data(), w.data(), t.bias ? b.data() : nullptr, d);
      conv2d_backward(d_in.data(), d_w.data(), d_b.data(), g.data(), in.data(), w.data(), d);
      std::vector<float> all = out;
      for (const auto* v : {&d_in, &d_w, &d_b}) all.insert(all.end(), v->begin(), v->end());
      return all;
    };
    int saved = num_threads();
    auto one = run(1), two = run(2), three = run(3);
    set_num_threads(saved);
    ASSERT_EQ(one.size(), two.size());
    EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0);
  }
}

// The forward for one image keeps its filters transformed between calls: changing one weight
// in place, or calling with more weight tensors in turn than it keeps, still gives each call
// the results of its own weights.
TEST(Conv2d, FastForwardOfOneImageFollowsEveryChangeOfTheWeights) {
  const Case t{1, 32, 13, 13, 64, 3, 1, 0, true};
  const Conv2dDims d = dims_of(t);
  std::vector<FastCase> cases;
  for (uint64_t seed = 300; seed < 300 + 6 * 4; seed += 4) cases.push_back(make_fast_case(t, seed));
  std::vector<float> out(cases[0].out.size());
  for (int round = 0; round < 2; ++round)
    for (const FastCase& f : cases) {
      conv2d_forward(out.data(), f.in.data(), f.w.data(), f.b.data(), d);
      expect_close("out", out, f.out, f.out_m);
    }
  FastCase f = cases[0];
  for (size_t i : {size_t{0}, f.w.size() / 2, f.w.size() - 1}) {
    SCOPED_TRACE(i);
    conv2d_forward(out.data(), f.in.data(), f.w.data(), f.b.data(), d);
    f.w[i] = -3.0f * f.w[i] + 0.5f;  // in place: the same pointer
    const FastCase want = [&] {
      FastCase g = f;
      std::vector<double> in = to_double(f.in), w = to_double(f.w), b = to_double(f.b);
      const std::vector<double> b_m = abs_of(b);
      g.out = direct_forward(in, w, &b, d);
      g.out_m = direct_forward(abs_of(in), abs_of(w), &b_m, d);
      return g;
    }();
    conv2d_forward(out.data(), f.in.data(), f.w.data(), f.b.data(), d);
    expect_close("out", out, want.out, want.out_m);
  }
}

// ---- the Layer ----

TEST(Conv2d, LayerRunsTheFastKernelsAndAddsIntoParameterGradients) {
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "bias" : "no bias");
    Case t{3, 2, 7, 5, 3, 3, 1, 1, bias};
    Conv2d conv(options_of(t));
    Rng rng(5);
    conv.init(Init::kPyTorch, rng);
    Conv2dDims d = dims_of(t);
    Tensor in = tensor_of({t.n, t.c, t.h, t.w}, testing::random_doubles(d.n * d.c * d.h * d.w, 41));
    Tensor out(conv.output_shape(in.shape()));
    ASSERT_EQ(out.shape(), Shape({3, 3, 7, 5}));
    conv.forward(out, in, Mode::kTrain);

    const float* b = bias ? conv.bias().value.data() : nullptr;
    std::vector<float> want(out.numel());
    conv2d_forward(want.data(), in.data(), conv.weight().value.data(), b, d);
    EXPECT_EQ(out.to_vector(), want);

    Tensor d_out = tensor_of(out.shape(), testing::random_doubles(out.numel(), 42));
    std::vector<float> want_d_in(in.numel()), want_d_w(conv.weight().value.numel()), want_d_b(t.oc);
    conv2d_backward(want_d_in.data(), want_d_w.data(), bias ? want_d_b.data() : nullptr,
                    d_out.data(), in.data(), conv.weight().value.data(), d);

    Tensor d_in = Tensor::full(in.shape(), 7.0f);
    conv.backward(d_in, d_out, in, out);
    EXPECT_EQ(d_in.to_vector(), want_d_in);
    EXPECT_EQ(conv.weight().grad.to_vector(), want_d_w);
    if (bias) {
      EXPECT_EQ(conv.bias().grad.to_vector(), want_d_b);
    }

    conv.backward(d_in, d_out, in, out);  // d_in overwritten, parameter grads doubled
    EXPECT_EQ(d_in.to_vector(), want_d_in);
    for (float& v : want_d_w) v *= 2;
    for (float& v : want_d_b) v *= 2;
    EXPECT_EQ(conv.weight().grad.to_vector(), want_d_w);
    if (bias) {
      EXPECT_EQ(conv.bias().grad.to_vector(), want_d_b);
    } else {
      EXPECT_TRUE(conv.bias().grad.empty());
    }
  }
}

// One Conv2d with BatchNorm2d (eval, running statistics away from 0 and 1) and the expected
// Conv2d, BatchNorm2d, ReLU, MaxPool2d(2) outputs, the layers one by one.
struct FusedCase {
  Conv2d conv;
  BatchNorm2d bn;
  Tensor in, want;
};

FusedCase fused_case(const Case& t, bool with_bn, bool pool) {
  FusedCase f{Conv2d(options_of(t)), BatchNorm2d({.num_features = t.oc}), Tensor(), Tensor()};
  Rng rng(9);
  f.conv.init(Init::kPyTorch, rng);
  const auto values = testing::random_doubles(4 * t.oc, 10);  // in [-1, 1)
  for (int64_t o = 0; o < t.oc; ++o) {
    f.bn.running_mean()[o] = static_cast<float>(values[o]);
    f.bn.running_var()[o] = static_cast<float>(1.5 + values[t.oc + o]);
    f.bn.weight().value[o] = static_cast<float>(values[2 * t.oc + o]);
    f.bn.bias().value[o] = static_cast<float>(values[3 * t.oc + o]);
  }
  f.in = tensor_of({t.n, t.c, t.h, t.w}, testing::random_doubles(t.n * t.c * t.h * t.w, 11));
  Tensor y(f.conv.output_shape(f.in.shape())), z(y.shape());
  f.conv.forward(y, f.in, Mode::kEval);
  if (with_bn) f.bn.forward(z, y, Mode::kEval);
  ReLU().forward(f.want, with_bn ? z : y, Mode::kEval);
  if (pool) {
    MaxPool2d max_pool({.kernel = 2});
    Tensor pooled(max_pool.output_shape(f.want.shape()));
    max_pool.forward(pooled, f.want, Mode::kEval);
    f.want = pooled;
  }
  return f;
}

// Conv2d, BatchNorm2d, ReLU and MaxPool2d(2) in one pass give the layers' values one by one,
// bit for bit: Winograd shapes, even and odd (the pool drops the last row and column), batches
// of many tiles and of few (one image at a time); the direct kernels' (one input channel: one
// image, odd sizes, pooled rows of more than 32 columns); with and without BatchNorm and the
// pool; other shapes have no fused path.
TEST(Conv2d, EvalFusedEqualsConvBatchNormReluPool) {
  for (const Case& t :
       {Case{9, 8, 12, 12, 8, 3, 1, 1, true}, Case{3, 8, 23, 23, 10, 3, 1, 1, false},
        Case{2, 16, 26, 28, 8, 3, 1, 0, true}, Case{3, 8, 9, 37, 8, 3, 1, 1, true},
        Case{1, 32, 13, 13, 64, 3, 1, 0, true}, Case{2, 9, 15, 14, 48, 3, 1, 1, false},
        Case{1, 1, 28, 28, 32, 3, 1, 0, true}, Case{5, 1, 27, 29, 7, 3, 1, 1, false},
        Case{2, 1, 40, 40, 5, 3, 1, 2, true}})
    for (bool with_bn : {true, false})
      for (bool pool : {true, false}) {
        SCOPED_TRACE(name_of(t) + (with_bn ? " batchnorm" : "") + (pool ? " pool" : ""));
        FusedCase f = fused_case(t, with_bn, pool);
        std::vector<float> center(t.oc), scale(t.oc), shift(t.oc);
        f.bn.eval_affine(center.data(), scale.data(), shift.data());
        Conv2dEpilogue e{.pool = pool};
        if (with_bn) {
          e.center = center.data();
          e.scale = scale.data();
          e.shift = shift.data();
        }
        Tensor got(f.want.shape());
        ASSERT_TRUE(f.conv.has_eval_fused(f.in.shape()));
        f.conv.forward_eval_fused(got, f.in, e);
        EXPECT_EQ(got.to_vector(), f.want.to_vector());
      }
  Conv2d small({.in_channels = 2, .out_channels = 8, .kernel = 3, .padding = 1});
  Tensor in({4, 2, 24, 24}), out({4, 8, 24, 24});
  EXPECT_FALSE(small.has_eval_fused(in.shape()));
  EXPECT_THAT(error_of([&] { small.forward_eval_fused(out, in, {}); }),
              HasSubstr("no fused eval forward for an input of shape (4, 2, 24, 24)"));
}

TEST(Conv2d, LayerChecksBufferShapes) {
  Conv2d conv({.in_channels = 1, .out_channels = 2, .kernel = 3});
  Tensor in({1, 1, 5, 5}), out({1, 2, 3, 3}), wrong({1, 2, 3, 4});
  EXPECT_EQ(error_of([&] { conv.forward(wrong, in, Mode::kEval); }),
            "Conv2d forward: output: expected shape (1, 2, 3, 3), got (1, 2, 3, 4)");
  Tensor d_in({1, 1, 5, 5}), bad_d_in({1, 1, 5, 4});
  EXPECT_THAT(error_of([&] { conv.backward(d_in, wrong, in, out); }),
              HasSubstr("Conv2d backward: gradient of the output: expected shape (1, 2, 3, 3)"));
  EXPECT_THAT(error_of([&] { conv.backward(bad_d_in, out, in, out); }),
              HasSubstr("Conv2d backward: gradient of the input: expected shape (1, 1, 5, 5)"));
  EXPECT_EQ(error_of([&] { conv.backward(d_in, out, in, out); }), "(no error)");
}

TEST(Conv2d, RejectsBadOptions) {
  auto make = [](Conv2dOptions o) { return error_of([&] { Conv2d conv(o); }); };
  EXPECT_EQ(make({.in_channels = 0, .out_channels = 2, .kernel = 3}),
            "Conv2d: in_channels must be at least 1, got 0");
  EXPECT_EQ(make({.in_channels = 1, .out_channels = -4, .kernel = 3}),
            "Conv2d: out_channels must be at least 1, got -4");
  EXPECT_EQ(make({.in_channels = 1, .out_channels = 2, .kernel = 0}),
            "Conv2d: kernel must be at least 1, got 0");
  EXPECT_EQ(make({.in_channels = 1, .out_channels = 2, .kernel = 3, .stride = 0}),
            "Conv2d: stride must be at least 1, got 0");
  EXPECT_EQ(make({.in_channels = 1, .out_channels = 2, .kernel = 3, .padding = -1}),
            "Conv2d: padding must be at least 0, got -1");
  EXPECT_EQ(make({.in_channels = 1, .out_channels = 2, .kernel = 3}), "(no error)");
  // Required fields left at their defaults are caught too.
  EXPECT_EQ(make({}), "Conv2d: in_channels must be at least 1, got 0");
}

TEST(Conv2d, OutputShape) {
  Conv2d basic({.in_channels = 1, .out_channels = 32, .kernel = 3});
  EXPECT_EQ(basic.output_shape({64, 1, 28, 28}), Shape({64, 32, 26, 26}));
  Conv2d same({.in_channels = 32, .out_channels = 64, .kernel = 3, .padding = 1});
  EXPECT_EQ(same.output_shape({2, 32, 28, 28}), Shape({2, 64, 28, 28}));
  Conv2d strided({.in_channels = 3, .out_channels = 4, .kernel = 3, .stride = 2, .padding = 1});
  EXPECT_EQ(strided.output_shape({1, 3, 7, 5}), Shape({1, 4, 4, 3}));
  // Padding lets an input smaller than the kernel through.
  Conv2d big({.in_channels = 1, .out_channels = 1, .kernel = 5, .padding = 2});
  EXPECT_EQ(big.output_shape({1, 1, 1, 2}), Shape({1, 1, 1, 2}));
}

TEST(Conv2d, RejectsBadInputShapes) {
  Conv2d conv({.in_channels = 3, .out_channels = 8, .kernel = 5});
  EXPECT_EQ(error_of([&] {
              conv.output_shape({1, 1, 28, 28});
            }),
            "Conv2d: expects 3 input channels, got 1 (input shape (1, 1, 28, 28))");
  EXPECT_EQ(error_of([&] {
              conv.output_shape({1, 3, 28});
            }),
            "Conv2d: expects input (N, 3, H, W) with H, W >= 5 (kernel 5, padding 0), got input "
            "of shape (1, 3, 28)");
  EXPECT_EQ(error_of([&] {
              conv.output_shape({1, 3, 28, 4});
            }),
            "Conv2d: expects input (N, 3, H, W) with H, W >= 5 (kernel 5, padding 0), got input "
            "of shape (1, 3, 28, 4)");
  EXPECT_EQ(error_of([&] { conv.output_shape({1, 3, 5, 5}); }), "(no error)");

  Conv2d padded({.in_channels = 32, .out_channels = 64, .kernel = 5, .padding = 1});
  EXPECT_EQ(error_of([&] {
              padded.output_shape({1, 64, 13, 13});
            }),
            "Conv2d: expects 32 input channels, got 64 (input shape (1, 64, 13, 13))");
  EXPECT_EQ(error_of([&] {
              padded.output_shape({1, 32, 2, 13});
            }),
            "Conv2d: expects input (N, 32, H, W) with H, W >= 3 (kernel 5, padding 1), got input "
            "of shape (1, 32, 2, 13)");
  EXPECT_EQ(error_of([&] { padded.output_shape({1, 32, 3, 3}); }), "(no error)");

  // forward and flops validate the input the same way.
  Tensor in({1, 1, 28, 28}), out({1, 8, 24, 24});
  EXPECT_THAT(error_of([&] { conv.forward(out, in, Mode::kEval); }),
              HasSubstr("Conv2d: expects 3 input channels, got 1"));
  EXPECT_THAT(error_of([&] {
                conv.flops({1, 1, 28, 28});
              }),
              HasSubstr("Conv2d: expects 3 input channels, got 1"));
}

TEST(Conv2d, ParamsAreNamedLikePyTorchAndStartAtZero) {
  Conv2d conv({.in_channels = 3, .out_channels = 4, .kernel = 5});
  auto p = conv.params();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "weight");
  EXPECT_EQ(p[0].param, &conv.weight());
  EXPECT_EQ(p[0].param->value.shape(), Shape({4, 3, 5, 5}));
  EXPECT_EQ(p[0].param->grad.shape(), Shape({4, 3, 5, 5}));
  EXPECT_EQ(p[1].name, "bias");
  EXPECT_EQ(p[1].param, &conv.bias());
  EXPECT_EQ(p[1].param->value.shape(), Shape({4}));
  EXPECT_EQ(p[1].param->grad.shape(), Shape({4}));
  for (const auto& np : p) {
    EXPECT_TRUE(np.param->trainable);
    for (float v : np.param->value) EXPECT_EQ(v, 0.0f);
    for (float v : np.param->grad) EXPECT_EQ(v, 0.0f);
  }

  Conv2d no_bias({.in_channels = 3, .out_channels = 4, .kernel = 5, .bias = false});
  auto q = no_bias.params();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].name, "weight");
  EXPECT_TRUE(no_bias.bias().value.empty());
  EXPECT_TRUE(no_bias.bias().grad.empty());
}

// The largest |value| in t.
float max_abs(const Tensor& t) {
  float m = 0;
  for (float v : t) m = std::max(m, std::abs(v));
  return m;
}

TEST(Conv2d, InitUsesTheFansOfTheKernel) {
  // fan_in = 4*3*3 = 36, fan_out = 16*3*3 = 144; 576 weights make the largest draw lie
  // within 1 % of the bound with overwhelming probability.
  Conv2dOptions o{.in_channels = 4, .out_channels = 16, .kernel = 3};
  Rng rng(9);
  Conv2d torch_like(o);
  torch_like.init(Init::kPyTorch, rng);
  float bound = 1.0f / std::sqrt(36.0f);
  EXPECT_LE(max_abs(torch_like.weight().value), bound);
  EXPECT_GE(max_abs(torch_like.weight().value), 0.99f * bound);
  EXPECT_LE(max_abs(torch_like.bias().value), bound);
  EXPECT_GT(max_abs(torch_like.bias().value), 0.0f);

  Conv2d keras_like(o);
  keras_like.init(Init::kGlorot, rng);
  float glorot = std::sqrt(6.0f / (36.0f + 144.0f));
  EXPECT_LE(max_abs(keras_like.weight().value), glorot);
  EXPECT_GE(max_abs(keras_like.weight().value), 0.99f * glorot);
  EXPECT_EQ(max_abs(keras_like.bias().value), 0.0f);

  Conv2d no_bias({.in_channels = 4, .out_channels = 16, .kernel = 3, .bias = false});
  no_bias.init(Init::kPyTorch, rng);
  EXPECT_GE(max_abs(no_bias.weight().value), 0.99f * bound);
  EXPECT_TRUE(no_bias.bias().value.empty());
}

TEST(Conv2d, Describe) {
  EXPECT_EQ(Conv2d({.in_channels = 1, .out_channels = 32, .kernel = 3}).describe(),
            "Conv2d(1, 32, kernel=3, stride=1, padding=0)");
  EXPECT_EQ(Conv2d({.in_channels = 32,
                    .out_channels = 64,
                    .kernel = 5,
                    .stride = 2,
                    .padding = 2,
                    .bias = false})
                .describe(),
            "Conv2d(32, 64, kernel=5, stride=2, padding=2, bias=false)");
}

TEST(Conv2d, Flops) {
  // (2, 3, 5, 5) -> (2, 4, 3, 3): 72 outputs, each 3*3*3 = 27 multiply-adds, plus a bias add.
  Conv2d conv({.in_channels = 3, .out_channels = 4, .kernel = 3});
  EXPECT_EQ(conv.flops({2, 3, 5, 5}), 2 * 72 * 27 + 72);
  Conv2d no_bias({.in_channels = 3, .out_channels = 4, .kernel = 3, .bias = false});
  EXPECT_EQ(no_bias.flops({2, 3, 5, 5}), 2 * 72 * 27);
  // Stride and padding change only the output size: (1, 3, 7, 5) -> (1, 4, 4, 3).
  Conv2d strided({.in_channels = 3, .out_channels = 4, .kernel = 3, .stride = 2, .padding = 1});
  EXPECT_EQ(strided.flops({1, 3, 7, 5}), 2 * 48 * 27 + 48);
}

}  // namespace
}  // namespace scratchnet
