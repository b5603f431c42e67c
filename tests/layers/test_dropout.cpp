// Tests for Dropout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/layers/dropout.h"
#include "scratchnet/parallel.h"
#include "support/error.h"
#include "support/gradcheck.h"

namespace scratchnet {
namespace {

using testing::error_of;

// Values in [0.5, 2) with random signs: never 0, so a zero output means a dropped element.
Tensor nonzero_tensor(const Shape& shape, uint64_t seed) {
  Tensor t(shape);
  Rng rng(seed);
  for (float& v : t) v = rng.uniform(0.5f, 2.0f) * (rng.uniform() < 0.5f ? -1.0f : 1.0f);
  return t;
}

std::vector<float> train_output(Dropout& dropout, const Tensor& in) {
  Tensor out;
  dropout.forward(out, in, Mode::kTrain);
  return out.to_vector();
}

TEST(Dropout, RejectsPOutsideZeroToOne) {
  EXPECT_EQ(error_of([] { Dropout({.p = 1.5f}); }), "Dropout: p must be in [0, 1], got 1.5");
  EXPECT_EQ(error_of([] { Dropout({.p = -0.1f}); }), "Dropout: p must be in [0, 1], got -0.1");
  EXPECT_EQ(error_of([] { Dropout({.p = std::nanf("")}); }),
            "Dropout: p must be in [0, 1], got nan");
  EXPECT_EQ(error_of([] { Dropout({.p = 0.0f}); }), "(no error)");
  EXPECT_EQ(error_of([] { Dropout({.p = 1.0f}); }), "(no error)");
}

TEST(Dropout, DescribeKindFlopsShapeAndParameters) {
  Dropout dropout;
  EXPECT_EQ(dropout.options().p, 0.5f);
  EXPECT_EQ(dropout.options().seed, 0u);
  EXPECT_EQ(dropout.kind(), "Dropout");
  EXPECT_EQ(dropout.describe(), "Dropout(p=0.5)");
  EXPECT_EQ(Dropout({.p = 0.25f}).describe(), "Dropout(p=0.25)");
  EXPECT_EQ(dropout.flops({2, 3, 4}), 24);
  EXPECT_EQ(dropout.output_shape({64, 32, 13, 13}), (Shape{64, 32, 13, 13}));
  EXPECT_TRUE(dropout.params().empty());
  EXPECT_TRUE(dropout.buffers().empty());
  EXPECT_TRUE(dropout.reshapes(Mode::kEval));  // the identity
  EXPECT_FALSE(dropout.reshapes(Mode::kTrain));
}

TEST(Dropout, EvalModeIsTheIdentityAndDrawsNothing) {
  Dropout dropout({.p = 0.5f, .seed = 3});
  Tensor in = nonzero_tensor({4, 3, 5}, 1), out;
  auto state = dropout.rng().state();
  dropout.forward(out, in, Mode::kEval);
  EXPECT_EQ(out.to_vector(), in.to_vector());
  EXPECT_EQ(dropout.rng().state(), state);

  Tensor d_out = nonzero_tensor({4, 3, 5}, 2), d_in = Tensor::full({4, 3, 5}, 9.0f);
  dropout.backward(d_in, d_out, in, out);
  EXPECT_EQ(d_in.to_vector(), d_out.to_vector());
}

TEST(Dropout, TrainModeZeroesOrScalesByHand) {
  // p = 0.25: kept elements are multiplied by 1 / 0.75 = 4/3.
  const float p = 0.25f, scale = 1.0f / (1.0f - p);
  Dropout dropout({.p = p, .seed = 11});
  Tensor in({2, 4}, {3, -3, 6, 1.5f, -0.75f, 3, 12, -6}), out;
  dropout.forward(out, in, Mode::kTrain);
  int kept = 0;
  for (int64_t i = 0; i < in.numel(); ++i) {
    if (out[i] == 0.0f) {
      EXPECT_EQ(dropout.mask()[i], 0.0f);
    } else {
      ++kept;
      EXPECT_EQ(out[i], in[i] * scale) << i;
      EXPECT_EQ(dropout.mask()[i], scale) << i;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, in.numel());
}

TEST(Dropout, MaskIsTheDocumentedStream) {
  // The layer's mask is dropout_mask drawn from Rng(seed): one uniform per element, in order.
  Dropout dropout({.p = 0.3f, .seed = 42});
  Tensor in = nonzero_tensor({5, 7}, 4), out;
  dropout.forward(out, in, Mode::kTrain);
  std::vector<float> mask(in.numel()), want(in.numel());
  Rng rng(42);
  dropout_mask(mask.data(), in.numel(), 0.3f, rng);
  dropout_forward(want.data(), in.data(), mask.data(), in.numel());
  EXPECT_EQ(dropout.mask().to_vector(), mask);
  EXPECT_EQ(dropout.mask().shape(), in.shape());
  EXPECT_EQ(out.to_vector(), want);
  EXPECT_EQ(dropout.rng().state(), rng.state());
}

TEST(Dropout, FractionOfZerosIsP) {
  const int64_t n = 100000;
  Tensor ones = Tensor::full({100, 1000}, 1.0f);
  for (float p : {0.1f, 0.5f, 0.8f}) {
    SCOPED_TRACE(p);
    Dropout dropout({.p = p, .seed = 1});
    std::vector<float> out = train_output(dropout, ones);
    int64_t zeros = 0;
    double sum = 0;
    for (float v : out) {
      zeros += v == 0.0f;
      sum += v;
    }
    // zeros ~ Binomial(n, p): allow 5 standard deviations.
    double sd = std::sqrt(n * p * (1.0 - p));
    EXPECT_NEAR(static_cast<double>(zeros), n * p, 5 * sd);
    // The scaling keeps the mean near 1 (kept count * 1/(1-p) / n).
    EXPECT_NEAR(sum / n, 1.0, 5 * sd / (n * (1.0 - p)));
  }
}

TEST(Dropout, SameSeedSameMaskDifferentSeedsDiffer) {
  Tensor in = nonzero_tensor({8, 50}, 5);
  Dropout a({.p = 0.5f, .seed = 42}), b({.p = 0.5f, .seed = 42}), c({.p = 0.5f, .seed = 43});
  std::vector<float> out_a = train_output(a, in);
  EXPECT_EQ(train_output(b, in), out_a);
  EXPECT_NE(train_output(c, in), out_a);
  // The stream advances: the next training step draws a new mask.
  EXPECT_NE(train_output(a, in), out_a);
}

TEST(Dropout, RngCanBeSavedRestoredAndReseeded) {
  Tensor in = nonzero_tensor({4, 25}, 6);
  Dropout dropout({.p = 0.5f, .seed = 1});
  train_output(dropout, in);
  auto state = dropout.rng().state();
  std::vector<float> first = train_output(dropout, in);
  dropout.rng().set_state(state);
  EXPECT_EQ(train_output(dropout, in), first);

  Dropout fresh({.p = 0.5f, .seed = 99});
  dropout.rng().seed_with(99);
  EXPECT_EQ(train_output(dropout, in), train_output(fresh, in));
}

TEST(Dropout, MaskDoesNotDependOnThreadCount) {
  const int saved = num_threads();
  Tensor in = nonzero_tensor({16, 333}, 7);
  set_num_threads(1);
  Dropout one({.p = 0.4f, .seed = 5});
  std::vector<float> out_one = train_output(one, in);
  set_num_threads(3);
  Dropout three({.p = 0.4f, .seed = 5});
  std::vector<float> out_three = train_output(three, in);
  set_num_threads(saved);
  EXPECT_EQ(out_one, out_three);
}

TEST(Dropout, BackwardIsMaskTimesScaleTimesGradient) {
  const float p = 0.25f, scale = 1.0f / (1.0f - p);
  Dropout dropout({.p = p, .seed = 8});
  Tensor in = nonzero_tensor({3, 4, 5}, 8), out;
  dropout.forward(out, in, Mode::kTrain);
  Tensor d_out = nonzero_tensor({3, 4, 5}, 9);
  Tensor d_in = Tensor::full({3, 4, 5}, 7.0f);  // stale values that backward must overwrite
  dropout.backward(d_in, d_out, in, out);
  int kept = 0;
  for (int64_t i = 0; i < in.numel(); ++i) {
    bool keep = out[i] != 0.0f;
    kept += keep;
    EXPECT_EQ(d_in[i], keep ? d_out[i] * scale : 0.0f) << i;
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, in.numel());
  std::vector<float> want(in.numel());
  dropout_backward(want.data(), d_out.data(), dropout.mask().data(), in.numel());
  EXPECT_EQ(d_in.to_vector(), want);
}

TEST(Dropout, GradientMatchesFiniteDifferences) {
  // With the mask fixed the layer is linear in its input.
  for (const Shape& shape : {Shape{1, 1}, Shape{3, 7}, Shape{2, 3, 3, 5}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t n = shape_numel(shape);
    std::vector<double> mask(static_cast<size_t>(n)), d_x;
    Rng rng(static_cast<uint64_t>(n));
    dropout_mask(mask.data(), n, 0.3f, rng);
    std::vector<double> x = testing::random_doubles(static_cast<size_t>(n), 2 + n);
    testing::check_gradients(
        [&](std::vector<double>& out) {
          out.resize(x.size());
          dropout_forward(out.data(), x.data(), mask.data(), n);
        },
        [&](const std::vector<double>& d_out) {
          dropout_backward(d_x.data(), d_out.data(), mask.data(), n);
        },
        {{"in", &x, &d_x}});
  }
}

TEST(Dropout, PZeroIsIdentityAndPOneZeroesEverything) {
  Tensor in = nonzero_tensor({6, 9}, 10), out, d_in;
  Tensor d_out = nonzero_tensor({6, 9}, 11);
  Dropout keep_all({.p = 0.0f});
  keep_all.forward(out, in, Mode::kTrain);
  EXPECT_EQ(out.to_vector(), in.to_vector());
  keep_all.backward(d_in, d_out, in, out);
  EXPECT_EQ(d_in.to_vector(), d_out.to_vector());

  Dropout drop_all({.p = 1.0f});
  drop_all.forward(out, in, Mode::kTrain);
  EXPECT_EQ(out.to_vector(), std::vector<float>(in.numel(), 0.0f));  // zeros, not NaN
  drop_all.backward(d_in, d_out, in, out);
  EXPECT_EQ(d_in.to_vector(), std::vector<float>(in.numel(), 0.0f));
}

TEST(Dropout, RejectsBackwardThatDoesNotMatchForward) {
  Dropout dropout;
  Tensor in = nonzero_tensor({2, 3}, 12), out, d_in;
  dropout.forward(out, in, Mode::kTrain);
  Tensor other({3, 2}), d_other({3, 2});
  EXPECT_EQ(error_of([&] { dropout.backward(d_in, d_other, other, d_other); }),
            "Dropout: backward input of shape (3, 2) does not match the last training "
            "forward's (2, 3)");
  Tensor d_out({2, 4});
  EXPECT_EQ(error_of([&] { dropout.backward(d_in, d_out, in, out); }),
            "Dropout: gradient of the output: expected shape (2, 3), got (2, 4)");
}

}  // namespace
}  // namespace scratchnet
