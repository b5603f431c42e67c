#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/kernels/gemm.h"
#include "scratchnet/layers/batch_norm1d.h"
#include "scratchnet/layers/batch_norm2d.h"
#include "scratchnet/layers/pool2d_dims.h"
#include "scratchnet/model.h"
#include "scratchnet/parallel.h"
#include "support/error.h"
#include "support/gradcheck.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;

// The message output_shape throws for input shape `in`.
std::string shape_error(const Layer& layer, const Shape& in) {
  return error_of([&] { layer.output_shape(in); });
}

std::vector<float> random_floats(size_t n, uint64_t seed, float low = -1, float high = 1) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.uniform(low, high);
  return v;
}

// ---- Forward by hand -------------------------------------------------------------------------

TEST(BatchNorm1d, ForwardTrainByHand) {
  // eps = 0.25 and columns with biased variance 0.75 make invstd exactly 1.
  // column 0 (0, 0, 0, 2): mean 0.5, x_hat (-0.5, -0.5, -0.5, 1.5)
  // column 1 (4, 2, 2, 2): mean 2.5, x_hat (1.5, -0.5, -0.5, -0.5)
  BatchNorm1d bn({.num_features = 2, .eps = 0.25f});
  bn.weight().value = Tensor({2}, {2, -1});
  bn.bias().value = Tensor({2}, {0.5f, 1});
  Tensor in({4, 2}, {0, 4, 0, 2, 0, 2, 2, 2});
  Tensor out({4, 2});
  bn.forward(out, in, Mode::kTrain);
  // column 0: 2 * x_hat + 0.5; column 1: -x_hat + 1
  EXPECT_THAT(out.to_vector(), ElementsAre(-0.5f, -0.5f, -0.5f, 1.5f, -0.5f, 1.5f, 3.5f, 1.5f));
  // running_mean = 0.1 * mean; running_var = 0.9 + 0.1 * (0.75 * 4 / 3)
  EXPECT_THAT(bn.running_mean().to_vector(), ElementsAre(0.05f, 0.25f));
  EXPECT_THAT(bn.running_var().to_vector(), ElementsAre(1.0f, 1.0f));
}

TEST(BatchNorm2d, ForwardTrainByHandStatisticsPerChannelOverBatchAndSpace) {
  // (N, C, H, W) = (2, 2, 1, 2), eps = 0.25.
  // channel 0: n0 (0, 0), n1 (0, 2) -> mean 0.5, var 0.75, x_hat (-0.5, -0.5, -0.5, 1.5)
  //            (sample 0 alone has variance 0: the statistics must span the batch)
  // channel 1: all 5 -> var 0, invstd 1 / sqrt(0.25) = 2, x_hat 0, out = beta
  BatchNorm2d bn({.num_features = 2, .eps = 0.25f});
  bn.weight().value = Tensor({2}, {1, 3});
  bn.bias().value = Tensor({2}, {0, -2});
  Tensor in({2, 2, 1, 2}, {0, 0, 5, 5, 0, 2, 5, 5});
  Tensor out({2, 2, 1, 2});
  bn.forward(out, in, Mode::kTrain);
  EXPECT_THAT(out.to_vector(), ElementsAre(-0.5f, -0.5f, -2, -2, -0.5f, 1.5f, -2, -2));
  // count = N * H * W = 4: unbiased var of channel 0 = 0.75 * 4 / 3 = 1, channel 1 = 0.
  EXPECT_THAT(bn.running_mean().to_vector(), ElementsAre(0.05f, 0.5f));
  EXPECT_THAT(bn.running_var().to_vector(), ElementsAre(1.0f, 0.9f));
}

TEST(BatchNorm1d, ForwardTrainWithDefaultEps) {
  // (-1, 1): mean 0, var 1 -> out = +-1 / sqrt(1 + 1e-5)
  BatchNorm1d bn({.num_features = 1});
  Tensor in({2, 1}, {-1, 1}), out({2, 1});
  bn.forward(out, in, Mode::kTrain);
  const float v = static_cast<float>(1 / std::sqrt(1 + 1e-5));
  EXPECT_FLOAT_EQ(out[0], -v);
  EXPECT_FLOAT_EQ(out[1], v);
}

TEST(BatchNorm2d, EvalForwardAndBackwardByHand) {
  // eps = 0.25, running_var (3.75, 0.75) -> std (2, 1); running_mean (1, -2).
  BatchNorm2d bn({.num_features = 2, .eps = 0.25f});
  bn.running_mean() = Tensor({2}, {1, -2});
  bn.running_var() = Tensor({2}, {3.75f, 0.75f});
  bn.weight().value = Tensor({2}, {2, 0.5f});
  bn.bias().value = Tensor({2}, {1, 0});
  Tensor in({1, 2, 1, 2}, {5, -1, 0, -3});
  Tensor out({1, 2, 1, 2});
  bn.forward(out, in, Mode::kEval);
  // x_hat channel 0: ((5 - 1) / 2, (-1 - 1) / 2) = (2, -1); channel 1: (0 + 2, -3 + 2) = (2, -1)
  // out channel 0: 2 * x_hat + 1; channel 1: 0.5 * x_hat
  EXPECT_THAT(out.to_vector(), ElementsAre(5, -1, 1, -0.5f));

  Tensor d_out({1, 2, 1, 2}, {1, 3, -1, 4});
  Tensor d_in = Tensor::full({1, 2, 1, 2}, 9.0f);  // overwritten
  bn.backward(d_in, d_out, in, out);
  // d_in = d_out * gamma / std: channel 0 * 1, channel 1 * 0.5
  EXPECT_THAT(d_in.to_vector(), ElementsAre(1, 3, -0.5f, 2));
  // d_gamma = sum d_out * x_hat: 1*2 + 3*(-1) = -1; -1*2 + 4*(-1) = -6. d_beta = sum d_out.
  EXPECT_THAT(bn.weight().grad.to_vector(), ElementsAre(-1, -6));
  EXPECT_THAT(bn.bias().grad.to_vector(), ElementsAre(4, 3));
  // Eval leaves the running statistics and the batch count alone.
  EXPECT_THAT(bn.running_mean().to_vector(), ElementsAre(1, -2));
  EXPECT_THAT(bn.running_var().to_vector(), ElementsAre(3.75f, 0.75f));
  EXPECT_EQ(bn.num_batches_tracked()[0], 0.0f);
}

// ---- Running statistics and modes ------------------------------------------------------------

TEST(BatchNorm1d, RunningStatisticsAfterTwoStepsByHand) {
  BatchNorm1d bn({.num_features = 2});  // momentum 0.1
  // step 1, N = 2: column 0 (1, 3) mean 2, unbiased var 2; column 1 (0, 0) mean 0, var 0.
  Tensor in1({2, 2}, {1, 0, 3, 0}), out1({2, 2});
  bn.forward(out1, in1, Mode::kTrain);
  // running_mean = 0.9 * 0 + 0.1 * mean; running_var = 0.9 * 1 + 0.1 * unbiased var
  EXPECT_THAT(bn.running_mean().to_vector(), ElementsAre(0.2f, 0.0f));
  EXPECT_THAT(bn.running_var().to_vector(), ElementsAre(1.1f, 0.9f));
  // step 2, N = 4: column 0 (2, 2, 2, 6) mean 3, biased var 3, unbiased 4;
  //                column 1 (-1, 1, -1, 1) mean 0, biased var 1, unbiased 4 / 3.
  Tensor in2({4, 2}, {2, -1, 2, 1, 2, -1, 6, 1}), out2({4, 2});
  bn.forward(out2, in2, Mode::kTrain);
  EXPECT_FLOAT_EQ(bn.running_mean()[0], 0.9 * 0.2 + 0.1 * 3);  // 0.48
  EXPECT_FLOAT_EQ(bn.running_mean()[1], 0.0f);
  EXPECT_FLOAT_EQ(bn.running_var()[0], 0.9 * 1.1 + 0.1 * 4);          // 1.39
  EXPECT_FLOAT_EQ(bn.running_var()[1], 0.9 * 0.9 + 0.1 * 4.0 / 3.0);  // 0.94333...
  EXPECT_EQ(bn.num_batches_tracked()[0], 2.0f);
}

TEST(BatchNorm2d, NumBatchesTrackedCountsOnlyTrainingForwards) {
  BatchNorm2d bn({.num_features = 3});
  Tensor in({2, 3, 2, 2}, random_floats(24, 1)), out({2, 3, 2, 2});
  EXPECT_EQ(bn.num_batches_tracked().shape(), Shape{});
  bn.forward(out, in, Mode::kEval);
  EXPECT_EQ(bn.num_batches_tracked()[0], 0.0f);
  EXPECT_THAT(bn.running_mean().to_vector(), ElementsAre(0, 0, 0));
  bn.forward(out, in, Mode::kTrain);
  EXPECT_EQ(bn.num_batches_tracked()[0], 1.0f);
  bn.forward(out, in, Mode::kEval);
  bn.forward(out, in, Mode::kEval);
  EXPECT_EQ(bn.num_batches_tracked()[0], 1.0f);
  bn.forward(out, in, Mode::kTrain);
  EXPECT_EQ(bn.num_batches_tracked()[0], 2.0f);
}

TEST(BatchNorm1d, MomentumZeroAndOne) {
  Tensor in({2, 1}, {1, 5}), out({2, 1});  // mean 3, unbiased var 8
  BatchNorm1d frozen({.num_features = 1, .momentum = 0});
  frozen.forward(out, in, Mode::kTrain);
  EXPECT_EQ(frozen.running_mean()[0], 0.0f);
  EXPECT_EQ(frozen.running_var()[0], 1.0f);
  BatchNorm1d latest({.num_features = 1, .momentum = 1});
  latest.forward(out, in, Mode::kTrain);
  EXPECT_EQ(latest.running_mean()[0], 3.0f);
  EXPECT_EQ(latest.running_var()[0], 8.0f);
}

TEST(BatchNorm1d, ModeSwitching) {
  const int64_t n = 5, f = 3;
  BatchNorm1d bn({.num_features = f});
  bn.weight().value = Tensor({f}, {1.5f, 0.5f, -1});
  bn.bias().value = Tensor({f}, {0.1f, -0.2f, 0.3f});
  Tensor in({n, f}, random_floats(n * f, 3, -2, 3)), out({n, f});
  Tensor d_out({n, f}, random_floats(n * f, 4)), d_in({n, f});
  const float* g = bn.weight().value.data();
  const float* b = bn.bias().value.data();

  // Training: the batch statistics.
  std::vector<float> want(n * f), mean(f), var(f), invstd(f), want_d_in(n * f);
  batch_norm_forward_train(want.data(), mean.data(), var.data(), invstd.data(), in.data(), g, b, n,
                           f, 1, 1e-5f);
  bn.forward(out, in, Mode::kTrain);
  EXPECT_EQ(out.to_vector(), want);
  bn.backward(d_in, d_out, in, out);
  batch_norm_backward_train<float>(want_d_in.data(), nullptr, nullptr, d_out.data(), in.data(),
                                   mean.data(), invstd.data(), g, n, f, 1);
  EXPECT_EQ(d_in.to_vector(), want_d_in);

  // Eval on the same batch: the running statistics, a different result; backward is the
  // affine map.
  const std::vector<float> train_out = out.to_vector();
  bn.forward(out, in, Mode::kEval);
  batch_norm_forward_eval(want.data(), in.data(), bn.running_mean().data(), bn.running_var().data(),
                          g, b, n, f, 1, 1e-5f);
  EXPECT_EQ(out.to_vector(), want);
  EXPECT_NE(out.to_vector(), train_out);
  bn.backward(d_in, d_out, in, out);
  for (int64_t i = 0; i < n * f; ++i) {
    const int64_t c = i % f;
    const float k = g[c] / std::sqrt(bn.running_var()[c] + 1e-5f);
    EXPECT_FLOAT_EQ(d_in[i], d_out[i] * k) << i;
  }

  // Back to training: the batch statistics again.
  bn.forward(out, in, Mode::kTrain);
  EXPECT_EQ(out.to_vector(), train_out);
  bn.backward(d_in, d_out, in, out);
  EXPECT_EQ(d_in.to_vector(), want_d_in);
}

TEST(BatchNorm1d, OneValuePerChannelIsRejectedOnlyInTraining) {
  BatchNorm1d bn({.num_features = 128});
  Tensor in({1, 128}, random_floats(128, 5)), out({1, 128});
  EXPECT_EQ(error_of([&] { bn.forward(out, in, Mode::kTrain); }),
            "BatchNorm1d: expected more than 1 value per channel when training, got input of "
            "shape (1, 128)");
  EXPECT_EQ(bn.num_batches_tracked()[0], 0.0f);
  EXPECT_EQ(error_of([&] { bn.forward(out, in, Mode::kEval); }), "(no error)");

  BatchNorm2d bn2({.num_features = 3});
  Tensor one_pixel({1, 3, 1, 1}), out1({1, 3, 1, 1});
  EXPECT_EQ(error_of([&] { bn2.forward(out1, one_pixel, Mode::kTrain); }),
            "BatchNorm2d: expected more than 1 value per channel when training, got input of "
            "shape (1, 3, 1, 1)");
  Tensor two_pixels({1, 3, 1, 2}, random_floats(6, 6)), out2({1, 3, 1, 2});
  EXPECT_EQ(error_of([&] { bn2.forward(out2, two_pixels, Mode::kTrain); }), "(no error)");
}

// ---- Gradient checks in double ---------------------------------------------------------------

// Checks the training kernels on input, gamma and beta for an (n, c, spatial) input.
void check_train_gradients(int64_t n, int64_t c, int64_t spatial, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " c=" << c << " spatial=" << spatial);
  const double eps = 1e-5;
  auto in = testing::random_doubles(n * c * spatial, seed, -1, 2);
  auto gamma = testing::random_doubles(c, seed + 1, 0.5, 1.5);
  auto beta = testing::random_doubles(c, seed + 2);
  std::vector<double> mean(c), var(c), invstd(c), d_in, d_gamma, d_beta;
  testing::check_gradients(
      [&](std::vector<double>& out) {
        out.assign(in.size(), 0.0);
        batch_norm_forward_train(out.data(), mean.data(), var.data(), invstd.data(), in.data(),
                                 gamma.data(), beta.data(), n, c, spatial, eps);
      },
      [&](const std::vector<double>& d_out) {
        batch_norm_backward_train(d_in.data(), d_gamma.data(), d_beta.data(), d_out.data(),
                                  in.data(), mean.data(), invstd.data(), gamma.data(), n, c,
                                  spatial);
      },
      {{"in", &in, &d_in}, {"gamma", &gamma, &d_gamma}, {"beta", &beta, &d_beta}}, 1e-6, 1e-6,
      1e-7);
}

// The per-channel sums in the order the kernels document and have always used: per row of
// `spatial` values, 8 interleaved partial sums combined as ((0 + 1) + (2 + 3)) + ((4 + 5) +
// (6 + 7)), then the tail; rows added in batch order. Vectorised paths must reproduce it bit
// for bit.
double ordered_sum(const std::vector<float>& a, const std::vector<float>* b, double center,
                   int kind, int64_t n, int64_t c, int64_t spatial, int64_t ch) {
  auto term = [&](int64_t i) {
    const double x = static_cast<double>(a[static_cast<size_t>(i)]);
    if (kind == 0) return x;
    if (kind == 1) return (x - center) * (x - center);
    return x * (static_cast<double>((*b)[static_cast<size_t>(i)]) - center);
  };
  double total = 0;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t base = (r * c + ch) * spatial;
    double acc[8] = {};
    int64_t s = 0;
    for (; s + 8 <= spatial; s += 8)
      for (int l = 0; l < 8; ++l) acc[l] += term(base + s + l);
    double v = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; s < spatial; ++s) v += term(base + s);
    total += v;
  }
  return total;
}

// Each instruction set's path (the float sums follow gemm_isa()), or the portable one.
TEST(BatchNorm2d, FloatStatisticsAndParameterGradientsKeepTheirSummationOrder) {
  const std::string saved = gemm_isa();
  for (const char* isa : {"avx512", "avx2", "generic"})
    for (const auto& [n, c, spatial] : std::vector<std::array<int64_t, 3>>{
             {1, 2, 7}, {3, 3, 13}, {5, 2, 16}, {6, 3, 1}, {8, 2, 30}, {9, 1, 5}, {5, 2, 43}}) {
      if (!gemm_isa_supported(isa)) continue;
      set_gemm_isa(isa);
      SCOPED_TRACE(fmt::format("{}: n={} c={} spatial={}", isa, n, c, spatial));
      const size_t size = static_cast<size_t>(n * c * spatial);
      // +2^60 and -2^60 in the first and third of each group of 8 values of a row: lanes 0 and 2
      // cancel exactly and absorb lanes 1 and 3 (and no others) only when combined as above, so
      // any other order shows in the mean and in d_beta.
      auto in = random_floats(size, 80, -2, 3), d_out = random_floats(size, 81);
      for (size_t i = 0; i < size; ++i) {
        const int64_t s = static_cast<int64_t>(i) % spatial;
        if (s >= spatial / 8 * 8) continue;  // the tail of the row is summed in order
        if (s % 8 == 0) in[i] = d_out[i] = 0x1p60f;
        if (s % 8 == 2) in[i] = d_out[i] = -0x1p60f;
      }
      auto gamma = random_floats(static_cast<size_t>(c), 82, 0.5, 1.5);
      auto beta = random_floats(static_cast<size_t>(c), 83);
      std::vector<float> out(size), mean(c), var(c), invstd(c), d_in(size), d_gamma(c), d_beta(c);
      batch_norm_forward_train(out.data(), mean.data(), var.data(), invstd.data(), in.data(),
                               gamma.data(), beta.data(), n, c, spatial, 1e-5);
      batch_norm_backward_train(d_in.data(), d_gamma.data(), d_beta.data(), d_out.data(), in.data(),
                                mean.data(), invstd.data(), gamma.data(), n, c, spatial);
      const double count = static_cast<double>(n * spatial);
      for (int64_t ch = 0; ch < c; ++ch) {
        const double m = ordered_sum(in, nullptr, 0, 0, n, c, spatial, ch) / count;
        const double v = ordered_sum(in, nullptr, m, 1, n, c, spatial, ch) / count;
        EXPECT_EQ(mean[ch], static_cast<float>(m));
        EXPECT_EQ(var[ch], static_cast<float>(v));
        const double mf = static_cast<double>(mean[ch]), is = static_cast<double>(invstd[ch]);
        EXPECT_EQ(d_beta[ch],
                  static_cast<float>(ordered_sum(d_out, nullptr, 0, 0, n, c, spatial, ch)));
        EXPECT_EQ(d_gamma[ch],
                  static_cast<float>(ordered_sum(d_out, &in, mf, 2, n, c, spatial, ch) * is));
      }
    }
  set_gemm_isa(saved.c_str());
}

// Every float output of the kernels (not only the sums) has the portable loops' bits on each
// instruction set's path: outputs with and without ReLU, statistics, gradients.
TEST(BatchNorm2d, FloatKernelsGiveThePortableBitsOnEveryInstructionSet) {
  const std::string saved = gemm_isa();
  for (const auto& [n, c, spatial] :
       std::vector<std::array<int64_t, 3>>{{2, 3, 37}, {4, 2, 64}, {3, 2, 5}, {5, 1, 100}}) {
    const size_t size = static_cast<size_t>(n * c * spatial);
    const auto in = random_floats(size, 90, -2, 3), d_out = random_floats(size, 91);
    const auto gamma = random_floats(static_cast<size_t>(c), 92, 0.5, 1.5);
    const auto beta = random_floats(static_cast<size_t>(c), 93);
    const auto run = [&] {
      std::vector<float> out(size), relu_out(size), eval_out(size), mean(c), var(c), invstd(c),
          d_in(size), d_gamma(c), d_beta(c);
      batch_norm_forward_train(relu_out.data(), mean.data(), var.data(), invstd.data(), in.data(),
                               gamma.data(), beta.data(), n, c, spatial, 1e-5, true);
      batch_norm_forward_train(out.data(), mean.data(), var.data(), invstd.data(), in.data(),
                               gamma.data(), beta.data(), n, c, spatial, 1e-5);
      batch_norm_forward_eval(eval_out.data(), in.data(), mean.data(), var.data(), gamma.data(),
                              beta.data(), n, c, spatial, 1e-5, true);
      batch_norm_backward_train(d_in.data(), d_gamma.data(), d_beta.data(), d_out.data(), in.data(),
                                mean.data(), invstd.data(), gamma.data(), n, c, spatial);
      return std::vector<std::vector<float>>{out,    relu_out, eval_out, mean,  var,
                                             invstd, d_in,     d_gamma,  d_beta};
    };
    set_gemm_isa("generic");
    const auto want = run();
    for (const char* isa : {"avx2", "avx512"}) {
      if (!gemm_isa_supported(isa)) continue;
      set_gemm_isa(isa);
      EXPECT_EQ(run(), want) << isa << ": n=" << n << " c=" << c << " spatial=" << spatial;
    }
  }
  set_gemm_isa(saved.c_str());
}

// The training backward of BatchNorm2d, ReLU and a 2x2 max-pool in two halves (parameters,
// then d_in sample by sample, as a convolution's backward asks for it) gives the whole
// backward's bits on every instruction set: odd plane sizes (a last row and column no window
// covers), batches the parameter pass takes in parts (7 samples), a gradient with -0 and, in the
// second round, argmax positions outside their windows (which only a caller can give).
TEST(BatchNorm2d, ReluPoolBackwardBySampleEqualsTheWholeBackward) {
  const std::string saved = gemm_isa();
  for (const auto& shape : std::vector<Shape>{
           {3, 2, 28, 28}, {2, 3, 7, 9}, {4, 2, 17, 17}, {2, 1, 5, 33}, {3, 2, 2, 2}, {7, 2, 9, 8}})
    for (bool outside : {false, true})
      for (const char* isa : {"generic", "avx2", "avx512"}) {
        if (!gemm_isa_supported(isa)) continue;
        set_gemm_isa(isa);
        const Pool2dDims d = pool2d_dims("MaxPool2d", shape, 2, 2, 0);
        const size_t size = static_cast<size_t>(shape_numel(shape));
        const size_t pooled = static_cast<size_t>(d.n * d.c * d.oh * d.ow);
        const size_t c = static_cast<size_t>(d.c);
        const auto in = random_floats(size, 94, -2, 3);
        auto d_out = random_floats(pooled, 95);
        for (size_t i = 0; i < pooled; i += 5) d_out[i] = -0.0f;
        const auto gamma = random_floats(c, 96, 0.5, 1.5), beta = random_floats(c, 97);
        std::vector<float> out(pooled), mean(c), var(c), invstd(c), scale(c);
        std::vector<int32_t> argmax(pooled);
        batch_norm_relu_pool_forward_train(out.data(), argmax.data(), mean.data(), var.data(),
                                           invstd.data(), scale.data(), in.data(), gamma.data(),
                                           beta.data(), d, 1e-5);
        if (outside)  // every third output names the first input of the plane's last row
          for (size_t o = 0; o < pooled; o += 3) argmax[o] = static_cast<int32_t>((d.h - 1) * d.w);
        if (d.n >= 5) {  // +1e20 in sample 0 and -1e20 in sample n - 2 of channel 0 cancel
          // exactly only when the samples' sums are added one after another, as the whole
          // backward adds them: summed in parts, the last sample is lost in -1e20
          const size_t plane = static_cast<size_t>(d.oh * d.ow);
          const size_t later = static_cast<size_t>(d.n - 2) * c * plane;
          for (size_t o = 0; o < plane; ++o)
            if (out[o] > 0 && out[later + o] > 0) {
              d_out[o] = 1e20f;
              d_out[later + o] = -1e20f;
              break;
            }
        }
        std::vector<float> whole(size), d_gamma(c), d_beta(c);
        batch_norm_relu_pool_backward_train(whole.data(), d_gamma.data(), d_beta.data(),
                                            d_out.data(), out.data(), argmax.data(), in.data(),
                                            mean.data(), invstd.data(), gamma.data(), d);
        std::vector<float> by_sample(size, 7.0f), grads(3 * c), d_gamma2(c), d_beta2(c);
        batch_norm_relu_pool_backward_params(grads.data(), d_gamma2.data(), d_beta2.data(),
                                             d_out.data(), out.data(), argmax.data(), in.data(),
                                             mean.data(), invstd.data(), gamma.data(), d);
        const size_t sample = size / static_cast<size_t>(d.n);
        for (int64_t i = 0; i < d.n; ++i)
          batch_norm_relu_pool_backward_sample(by_sample.data() + i * sample, i, grads.data(),
                                               d_out.data(), out.data(), argmax.data(), in.data(),
                                               mean.data(), d);
        const std::string where = fmt::format("{} {} outside={}", isa, shape_str(shape), outside);
        EXPECT_EQ(d_gamma2, d_gamma) << where;
        EXPECT_EQ(d_beta2, d_beta) << where;
        ASSERT_EQ(by_sample.size(), whole.size());
        for (size_t k = 0; k < size; ++k)  // bit for bit: -0 and +0 differ
          ASSERT_EQ(std::signbit(by_sample[k]), std::signbit(whole[k])) << where << " at " << k;
        EXPECT_EQ(by_sample, whole) << where;
      }
  set_gemm_isa(saved.c_str());
}

TEST(BatchNorm2d, GradientCheckTrainDouble) {
  check_train_gradients(4, 3, 5 * 3, 10);  // (4, 3, 5, 3)
  check_train_gradients(2, 2, 3 * 7, 20);  // (2, 2, 3, 7)
  check_train_gradients(1, 2, 2 * 2, 30);  // one sample, statistics over space only
}

TEST(BatchNorm1d, GradientCheckTrainDouble) {
  check_train_gradients(6, 5, 1, 40);  // (6, 5)
  check_train_gradients(2, 3, 1, 50);  // the smallest batch allowed in training
  check_train_gradients(3, 4, 5, 60);  // (3, 4, 5): 3-D input
}

TEST(BatchNorm2d, GradientCheckEvalDouble) {
  const int64_t n = 3, c = 3, spatial = 4 * 3;
  const double eps = 1e-3;
  auto in = testing::random_doubles(n * c * spatial, 70, -1, 2);
  auto gamma = testing::random_doubles(c, 71, 0.5, 1.5);
  auto beta = testing::random_doubles(c, 72);
  auto running_mean = testing::random_doubles(c, 73);
  auto running_var = testing::random_doubles(c, 74, 0.5, 2);
  std::vector<double> d_in, d_gamma, d_beta;
  testing::check_gradients(
      [&](std::vector<double>& out) {
        out.assign(in.size(), 0.0);
        batch_norm_forward_eval(out.data(), in.data(), running_mean.data(), running_var.data(),
                                gamma.data(), beta.data(), n, c, spatial, eps);
      },
      [&](const std::vector<double>& d_out) {
        batch_norm_backward_eval(d_in.data(), d_gamma.data(), d_beta.data(), d_out.data(),
                                 in.data(), running_mean.data(), running_var.data(), gamma.data(),
                                 n, c, spatial, eps);
      },
      {{"in", &in, &d_in}, {"gamma", &gamma, &d_gamma}, {"beta", &beta, &d_beta}});
}

// ---- Layer against the float kernels ---------------------------------------------------------

TEST(BatchNorm2d, LayerMatchesFloatKernelAndAddsIntoGrads) {
  const int64_t n = 3, c = 4, h = 5, w = 2, s = h * w;
  BatchNorm2d bn({.num_features = c, .eps = 1e-3f, .momentum = 0.2f});
  bn.weight().value = Tensor({c}, random_floats(c, 80, 0.5f, 1.5f));
  bn.bias().value = Tensor({c}, random_floats(c, 81));
  Tensor in({n, c, h, w}, random_floats(n * c * s, 82, -1, 3));
  Tensor d_out({n, c, h, w}, random_floats(n * c * s, 83));
  const float* g = bn.weight().value.data();
  const float* b = bn.bias().value.data();

  for (Mode mode : {Mode::kTrain, Mode::kEval}) {
    SCOPED_TRACE(mode == Mode::kTrain ? "train" : "eval");
    bn.weight().grad.zero();
    bn.bias().grad.zero();
    std::vector<float> want(n * c * s), want_d_in(n * c * s), dg(c, 0), db(c, 0);
    if (mode == Mode::kTrain) {
      std::vector<float> mean(c), var(c), invstd(c);
      batch_norm_forward_train(want.data(), mean.data(), var.data(), invstd.data(), in.data(), g, b,
                               n, c, s, 1e-3f);
      batch_norm_backward_train(want_d_in.data(), dg.data(), db.data(), d_out.data(), in.data(),
                                mean.data(), invstd.data(), g, n, c, s);
    } else {
      batch_norm_forward_eval(want.data(), in.data(), bn.running_mean().data(),
                              bn.running_var().data(), g, b, n, c, s, 1e-3f);
      batch_norm_backward_eval(want_d_in.data(), dg.data(), db.data(), d_out.data(), in.data(),
                               bn.running_mean().data(), bn.running_var().data(), g, n, c, s,
                               1e-3f);
    }
    Tensor out({n, c, h, w}), d_in({n, c, h, w});
    bn.forward(out, in, mode);
    EXPECT_EQ(out.to_vector(), want);
    bn.backward(d_in, d_out, in, out);
    EXPECT_EQ(d_in.to_vector(), want_d_in);
    EXPECT_EQ(bn.weight().grad.to_vector(), dg);
    EXPECT_EQ(bn.bias().grad.to_vector(), db);
    bn.backward(d_in, d_out, in, out);
    EXPECT_EQ(d_in.to_vector(), want_d_in);
    for (int64_t i = 0; i < c; ++i) {
      EXPECT_EQ(bn.weight().grad[i], 2 * dg[i]) << i;
      EXPECT_EQ(bn.bias().grad[i], 2 * db[i]) << i;
    }
  }
}

TEST(BatchNorm1d, ThreeDimensionalInputMatchesBatchNorm2d) {
  // (N, F, L) through BatchNorm1d equals (N, F, L, 1) through BatchNorm2d.
  const int64_t n = 2, f = 3, l = 4;
  BatchNorm1d bn1({.num_features = f});
  BatchNorm2d bn2({.num_features = f});
  auto values = random_floats(n * f * l, 90);
  Tensor in1({n, f, l}, values), in2({n, f, l, 1}, values);
  Tensor out1({n, f, l}), out2({n, f, l, 1});
  bn1.forward(out1, in1, Mode::kTrain);
  bn2.forward(out2, in2, Mode::kTrain);
  EXPECT_EQ(out1.to_vector(), out2.to_vector());
  EXPECT_EQ(bn1.running_var().to_vector(), bn2.running_var().to_vector());
  Tensor d_out1({n, f, l}, random_floats(n * f * l, 91)), d_out2 = d_out1;
  d_out2.reshape({n, f, l, 1});
  Tensor d_in1({n, f, l}), d_in2({n, f, l, 1});
  bn1.backward(d_in1, d_out1, in1, out1);
  bn2.backward(d_in2, d_out2, in2, out2);
  EXPECT_EQ(d_in1.to_vector(), d_in2.to_vector());
  EXPECT_EQ(bn1.weight().grad.to_vector(), bn2.weight().grad.to_vector());
}

TEST(BatchNorm2d, FloatStatisticsStayAccurateWithALargeMean) {
  // Values 1000 + u, u in [-1, 1): a one-pass float E[x^2] - E[x]^2 would lose the variance.
  const int64_t n = 8, c = 2, s = 64;
  auto values = random_floats(n * c * s, 95, -1, 1);
  for (float& v : values) v += 1000;
  std::vector<double> in_d(values.begin(), values.end()), gamma_d(c, 1), beta_d(c, 0);
  std::vector<double> out_d(values.size()), mean_d(c), var_d(c), invstd_d(c);
  batch_norm_forward_train(out_d.data(), mean_d.data(), var_d.data(), invstd_d.data(), in_d.data(),
                           gamma_d.data(), beta_d.data(), n, c, s, 1e-5);
  std::vector<float> gamma(c, 1), beta(c, 0), out(values.size()), mean(c), var(c), invstd(c);
  batch_norm_forward_train(out.data(), mean.data(), var.data(), invstd.data(), values.data(),
                           gamma.data(), beta.data(), n, c, s, 1e-5);
  for (int64_t ch = 0; ch < c; ++ch) EXPECT_NEAR(var[ch], var_d[ch], 1e-6 * var_d[ch]);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], out_d[i], 1e-3) << i;
}

TEST(BatchNorm2d, ResultsDoNotDependOnThreadCount) {
  const int64_t n = 5, c = 7, s = 9;
  auto in = random_floats(n * c * s, 100), d_out = random_floats(n * c * s, 101);
  auto gamma = random_floats(c, 102, 0.5f, 1.5f), beta = random_floats(c, 103);
  auto run = [&](int threads) {
    set_num_threads(threads);
    std::vector<float> out(in.size()), mean(c), var(c), invstd(c), d_in(in.size()), dg(c, 0),
        db(c, 0);
    batch_norm_forward_train(out.data(), mean.data(), var.data(), invstd.data(), in.data(),
                             gamma.data(), beta.data(), n, c, s, 1e-5);
    batch_norm_backward_train(d_in.data(), dg.data(), db.data(), d_out.data(), in.data(),
                              mean.data(), invstd.data(), gamma.data(), n, c, s);
    return std::vector<std::vector<float>>{out, mean, var, invstd, d_in, dg, db};
  };
  const int saved = num_threads();
  auto one = run(1);
  for (int threads : {2, 3}) EXPECT_EQ(run(threads), one) << threads << " threads";
  set_num_threads(saved);
}

// ---- Options, shapes, names ------------------------------------------------------------------

TEST(BatchNorm, RejectsBadOptions) {
  EXPECT_EQ(error_of([] { BatchNorm2d({.num_features = 0}); }),
            "BatchNorm2d: num_features must be at least 1, got 0");
  EXPECT_EQ(error_of([] { BatchNorm1d({.num_features = -4}); }),
            "BatchNorm1d: num_features must be at least 1, got -4");
  EXPECT_EQ(error_of([] { BatchNorm2d({.num_features = 8, .eps = 0}); }),
            "BatchNorm2d: eps must be positive, got 0");
  EXPECT_EQ(error_of([] { BatchNorm1d({.num_features = 8, .eps = -0.5f}); }),
            "BatchNorm1d: eps must be positive, got -0.5");
  EXPECT_EQ(error_of([] { BatchNorm1d({.num_features = 8, .eps = NAN}); }),
            "BatchNorm1d: eps must be positive, got nan");
  EXPECT_EQ(error_of([] { BatchNorm2d({.num_features = 8, .momentum = 1.5f}); }),
            "BatchNorm2d: momentum must be in [0, 1], got 1.5");
  EXPECT_EQ(error_of([] { BatchNorm1d({.num_features = 8, .momentum = -0.25f}); }),
            "BatchNorm1d: momentum must be in [0, 1], got -0.25");
}

TEST(BatchNorm, RejectsBadInputShapes) {
  BatchNorm2d bn2({.num_features = 32});
  EXPECT_EQ(bn2.output_shape({64, 32, 28, 28}), (Shape{64, 32, 28, 28}));
  EXPECT_EQ(shape_error(bn2, {1, 64, 14, 14}),
            "BatchNorm2d: expects 32 channels, got 64 (input shape (1, 64, 14, 14))");
  EXPECT_EQ(shape_error(bn2, {1, 32}),
            "BatchNorm2d: expects a 4-D input (N, 32, H, W), got input of shape (1, 32)");

  BatchNorm1d bn1({.num_features = 128});
  EXPECT_EQ(bn1.output_shape({64, 128}), (Shape{64, 128}));
  EXPECT_EQ(bn1.output_shape({64, 128, 3}), (Shape{64, 128, 3}));
  EXPECT_EQ(shape_error(bn1, {1, 10}),
            "BatchNorm1d: expects 128 features, got 10 (input shape (1, 10))");
  EXPECT_EQ(shape_error(bn1, {1, 128, 2, 2}),
            "BatchNorm1d: expects a 2-D input (N, 128) or a 3-D input (N, 128, L), got input of "
            "shape (1, 128, 2, 2)");

  Tensor in({2, 10}), out({2, 10});
  EXPECT_EQ(error_of([&] { bn1.forward(out, in, Mode::kTrain); }),
            "BatchNorm1d: expects 128 features, got 10 (input shape (2, 10))");
  Tensor good({2, 128}), bad_out({2, 127});
  EXPECT_EQ(error_of([&] { bn1.forward(bad_out, good, Mode::kTrain); }),
            "BatchNorm1d: output: expected shape (2, 128), got (2, 127)");
}

TEST(BatchNorm, BackwardBeforeForwardIsAnError) {
  BatchNorm1d bn({.num_features = 2});
  Tensor in({3, 2}), d_out({3, 2}), d_in({3, 2}), out({3, 2});
  EXPECT_EQ(error_of([&] { bn.backward(d_in, d_out, in, out); }),
            "BatchNorm1d: backward called before forward");
}

TEST(BatchNorm, ParamsBuffersDescribeFlops) {
  BatchNorm2d bn2({.num_features = 32});
  auto p = bn2.params();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "weight");
  EXPECT_EQ(p[1].name, "bias");
  EXPECT_EQ(p[0].param->value.shape(), Shape{32});
  EXPECT_EQ(p[1].param->grad.shape(), Shape{32});
  auto buf = bn2.buffers();
  ASSERT_EQ(buf.size(), 3u);
  EXPECT_EQ(buf[0].name, "running_mean");
  EXPECT_EQ(buf[1].name, "running_var");
  EXPECT_EQ(buf[2].name, "num_batches_tracked");
  EXPECT_EQ(buf[0].tensor->shape(), Shape{32});
  EXPECT_EQ(buf[1].tensor->shape(), Shape{32});
  EXPECT_EQ(buf[2].tensor->shape(), Shape{});
  EXPECT_EQ(buf[2].tensor->numel(), 1);
  EXPECT_EQ(bn2.kind(), "BatchNorm2d");
  EXPECT_EQ(bn2.describe(), "BatchNorm2d(32, eps=1e-05, momentum=0.1)");
  EXPECT_EQ(bn2.flops({64, 32, 28, 28}), 2 * 64 * 32 * 28 * 28);

  BatchNorm1d bn1({.num_features = 128, .eps = 1e-3f, .momentum = 0.01f});
  EXPECT_EQ(bn1.kind(), "BatchNorm1d");
  EXPECT_EQ(bn1.describe(), "BatchNorm1d(128, eps=0.001, momentum=0.01)");
  EXPECT_EQ(bn1.flops({64, 128}), 2 * 64 * 128);
  EXPECT_THAT(error_of([&] { bn1.flops({64, 10}); }), HasSubstr("expects 128 features"));
}

TEST(BatchNorm, StartsAndInitResetsLikePyTorch) {
  BatchNorm2d bn({.num_features = 3});
  EXPECT_THAT(bn.weight().value.to_vector(), ElementsAre(1, 1, 1));
  EXPECT_THAT(bn.bias().value.to_vector(), ElementsAre(0, 0, 0));
  EXPECT_THAT(bn.running_mean().to_vector(), ElementsAre(0, 0, 0));
  EXPECT_THAT(bn.running_var().to_vector(), ElementsAre(1, 1, 1));
  EXPECT_EQ(bn.num_batches_tracked()[0], 0.0f);

  Tensor in({2, 3, 2, 2}, random_floats(24, 110, 1, 3)), out({2, 3, 2, 2});
  bn.forward(out, in, Mode::kTrain);
  bn.weight().value.fill(2);
  bn.bias().value.fill(-1);
  ASSERT_NE(bn.running_mean()[0], 0.0f);
  Rng rng(1);
  bn.init(Init::kGlorot, rng);
  EXPECT_THAT(bn.weight().value.to_vector(), ElementsAre(1, 1, 1));
  EXPECT_THAT(bn.bias().value.to_vector(), ElementsAre(0, 0, 0));
  EXPECT_THAT(bn.running_mean().to_vector(), ElementsAre(0, 0, 0));
  EXPECT_THAT(bn.running_var().to_vector(), ElementsAre(1, 1, 1));
  EXPECT_EQ(bn.num_batches_tracked()[0], 0.0f);
}

TEST(BatchNorm, InsideSequential) {
  Sequential model;
  model.add(BatchNorm2d({.num_features = 3}));
  EXPECT_EQ(error_of([&] {
              model.build({4, 2, 2});
            }),
            "layer 0 BatchNorm2d: expects 3 channels, got 4 (input shape (1, 4, 2, 2))");
  model.build({3, 2, 2});
  auto buf = model.buffers();
  ASSERT_EQ(buf.size(), 3u);
  EXPECT_EQ(buf[0].name, "0.running_mean");
  EXPECT_EQ(buf[2].name, "0.num_batches_tracked");
  EXPECT_EQ(model.params()[0].name, "0.weight");
  Tensor x({2, 3, 2, 2}, random_floats(24, 120));
  const Tensor& y = model.forward(x, Mode::kTrain);
  // Per channel the training output has mean 0 (gamma 1, beta 0).
  for (int c = 0; c < 3; ++c) {
    double sum = 0;
    for (int n = 0; n < 2; ++n)
      for (int s = 0; s < 4; ++s) sum += y[(n * 3 + c) * 4 + s];
    EXPECT_NEAR(sum, 0.0, 1e-5) << c;
  }
  EXPECT_EQ((*buf[2].tensor)[0], 1.0f);
}

}  // namespace
}  // namespace scratchnet
