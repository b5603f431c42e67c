#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/loss.h"
#include "support/error.h"
#include "support/gradcheck.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

void expect_values(const Tensor& t, const std::vector<float>& want, float tol) {
  ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(t[i], want[i], tol) << "element " << i;
}

// ---- cross_entropy_loss: hand-worked values ----

// Logits (0, ln 3) give softmax (1/4, 3/4): the loss is -ln p[label].
TEST(CrossEntropyLoss, HandWorkedTwoClasses) {
  const float ln3 = std::log(3.0f);
  Tensor logits({2, 2}, {0.0f, ln3, 0.0f, ln3});
  std::vector<int32_t> labels = {1, 0};
  Tensor d_logits;
  float loss = cross_entropy_loss(logits, labels, &d_logits);
  // (-ln 3/4 - ln 1/4) / 2 = (ln 4/3 + ln 4) / 2
  EXPECT_NEAR(loss, (std::log(4.0 / 3.0) + std::log(4.0)) / 2, 1e-6);
  EXPECT_EQ(d_logits.shape(), (Shape{2, 2}));
  // (softmax - onehot) / N: row 0 (1/4, 3/4 - 1) / 2, row 1 (1/4 - 1, 3/4) / 2.
  expect_values(d_logits, {0.125f, -0.125f, -0.375f, 0.375f}, 1e-7f);
}

TEST(CrossEntropyLoss, EqualLogitsGiveLogK) {
  Tensor logits({1, 4}, {2.5f, 2.5f, 2.5f, 2.5f});
  std::vector<int32_t> labels = {3};
  Tensor d_logits;
  EXPECT_NEAR(cross_entropy_loss(logits, labels, &d_logits), std::log(4.0), 1e-6);
  expect_values(d_logits, {0.25f, 0.25f, 0.25f, -0.75f}, 1e-7f);
}

TEST(CrossEntropyLoss, InvariantToShiftingARow) {
  Tensor a({1, 3}, {0.5f, -1.0f, 2.0f});
  Tensor b({1, 3}, {10.5f, 9.0f, 12.0f});
  std::vector<int32_t> labels = {1};
  Tensor da, db;
  EXPECT_NEAR(cross_entropy_loss(a, labels, &da), cross_entropy_loss(b, labels, &db), 1e-5);
  expect_values(db, da.to_vector(), 1e-6f);
}

TEST(CrossEntropyLoss, WorksWithoutAGradient) {
  Tensor logits({1, 2}, {0.0f, std::log(3.0f)});
  std::vector<int32_t> labels = {0};
  EXPECT_NEAR(cross_entropy_loss(logits, labels), std::log(4.0), 1e-6);
}

TEST(CrossEntropyLoss, OverwritesAndResizesTheGradient) {
  Tensor logits({1, 2}, {0.0f, std::log(3.0f)});
  std::vector<int32_t> labels = {1};
  Tensor d_logits = Tensor::full({3, 5}, 99.0f);
  cross_entropy_loss(logits, labels, &d_logits);
  EXPECT_EQ(d_logits.shape(), (Shape{1, 2}));
  expect_values(d_logits, {0.25f, -0.25f}, 1e-7f);
  cross_entropy_loss(logits, labels, &d_logits);  // twice: still overwritten, not added
  expect_values(d_logits, {0.25f, -0.25f}, 1e-7f);
}

// ---- label smoothing ----

// K = 2, label 1, smoothing 0.2: target = 0.8 * (0, 1) + 0.2 / 2 = (0.1, 0.9).
TEST(CrossEntropyLoss, LabelSmoothingHandWorked) {
  Tensor logits({1, 2}, {0.0f, std::log(3.0f)});
  std::vector<int32_t> labels = {1};
  Tensor d_logits;
  float loss = cross_entropy_loss(logits, labels, &d_logits, {.label_smoothing = 0.2f});
  // -(0.1 ln 1/4 + 0.9 ln 3/4)
  EXPECT_NEAR(loss, 0.1 * std::log(4.0) + 0.9 * std::log(4.0 / 3.0), 1e-6);
  expect_values(d_logits, {0.25f - 0.1f, 0.75f - 0.9f}, 1e-7f);
}

// Smoothing 1 makes the target uniform whatever the label.
TEST(CrossEntropyLoss, FullSmoothingIgnoresTheLabel) {
  Tensor logits({1, 2}, {0.0f, std::log(3.0f)});
  std::vector<int32_t> label0 = {0}, label1 = {1};
  const double want = -(0.5 * std::log(0.25) + 0.5 * std::log(0.75));
  EXPECT_NEAR(cross_entropy_loss(logits, label0, nullptr, {.label_smoothing = 1.0f}), want, 1e-6);
  EXPECT_NEAR(cross_entropy_loss(logits, label1, nullptr, {.label_smoothing = 1.0f}), want, 1e-6);
}

// PyTorch's definition: (1 - ls) * nll + ls * mean over classes of -log_softmax, averaged over
// the batch. Worked here for three classes from log-softmax values computed independently.
TEST(CrossEntropyLoss, LabelSmoothingMatchesPyTorchDefinition) {
  Tensor logits({2, 3}, {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f});
  std::vector<int32_t> labels = {0, 2};
  const double ls = 0.3;
  double want = 0;
  for (int i = 0; i < 2; ++i) {
    double sum_exp = 0;
    for (int j = 0; j < 3; ++j) sum_exp += std::exp(double(logits[i * 3 + j]));
    double log_sum = std::log(sum_exp), nll = 0, mean_neg_logp = 0;
    for (int j = 0; j < 3; ++j) {
      double logp = double(logits[i * 3 + j]) - log_sum;
      if (j == labels[i]) nll = -logp;
      mean_neg_logp -= logp / 3;
    }
    want += ((1 - ls) * nll + ls * mean_neg_logp) / 2;
  }
  EXPECT_NEAR(cross_entropy_loss(logits, labels, nullptr, {.label_smoothing = 0.3f}), want, 1e-6);
}

// ---- large logits ----

TEST(CrossEntropyLoss, LargeLogitsAreExact) {
  Tensor logits({2, 2}, {1000.0f, -1000.0f, 1000.0f, -1000.0f});
  std::vector<int32_t> right = {0, 0}, wrong = {1, 1};
  Tensor d_logits;
  EXPECT_EQ(cross_entropy_loss(logits, right, &d_logits), 0.0f);
  expect_values(d_logits, {0.0f, 0.0f, 0.0f, 0.0f}, 0.0f);
  EXPECT_EQ(cross_entropy_loss(logits, wrong, &d_logits), 2000.0f);
  expect_values(d_logits, {0.5f, -0.5f, 0.5f, -0.5f}, 0.0f);
}

TEST(CrossEntropyLoss, LargeEqualLogits) {
  Tensor logits({2, 3}, {1000.0f, 1000.0f, 1000.0f, -1000.0f, -1000.0f, -1000.0f});
  std::vector<int32_t> labels = {0, 2};
  Tensor d_logits;
  EXPECT_NEAR(cross_entropy_loss(logits, labels, &d_logits), std::log(3.0), 1e-6);
  for (float v : d_logits) EXPECT_TRUE(std::isfinite(v));
}

// Smoothing 0.1 with K = 2, label 0: target (0.95, 0.05), log-softmax (0, -2000).
TEST(CrossEntropyLoss, LargeLogitsWithLabelSmoothing) {
  Tensor logits({1, 2}, {1000.0f, -1000.0f});
  std::vector<int32_t> labels = {0};
  EXPECT_NEAR(cross_entropy_loss(logits, labels, nullptr, {.label_smoothing = 0.1f}), 100.0f,
              1e-3f);
}

// A float accumulator would drift over 2^17 terms (relative error ~1e-4); double does not.
TEST(CrossEntropyLoss, AccumulatesInDouble) {
  const int64_t n = int64_t{1} << 17;
  Tensor logits({n, 2});
  std::vector<int32_t> labels(n, 1);
  for (int64_t i = 0; i < n; ++i) logits[2 * i + 1] = std::log(3.0f);
  const float one_row = cross_entropy_loss(Tensor({1, 2}, {0.0f, logits[1]}), {labels.data(), 1});
  EXPECT_FLOAT_EQ(cross_entropy_loss(logits, labels), one_row);
}

// ---- kernels: gradient check in double and parity of the float path ----

struct CeCase {
  int64_t n, k;
  double label_smoothing;
};

TEST(CrossEntropyLoss, GradientCheck) {
  for (CeCase c : {CeCase{1, 1, 0.0}, CeCase{1, 3, 0.0}, CeCase{4, 2, 0.0}, CeCase{3, 5, 0.0},
                   CeCase{5, 7, 0.25}, CeCase{2, 10, 1.0}}) {
    SCOPED_TRACE("n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
                 " ls=" + std::to_string(c.label_smoothing));
    std::vector<double> logits = testing::random_doubles(c.n * c.k, 11 + c.n * c.k, -3.0, 3.0);
    std::vector<int32_t> labels(c.n);
    for (int64_t i = 0; i < c.n; ++i) labels[i] = static_cast<int32_t>((i * 3 + 1) % c.k);
    std::vector<double> d_logits;
    testing::check_gradients(
        [&](std::vector<double>& out) {
          out = {cross_entropy_loss_kernel<double>(nullptr, logits.data(), labels.data(), c.n, c.k,
                                                   c.label_smoothing)};
        },
        [&](const std::vector<double>& d_out) {
          d_logits.resize(logits.size());
          cross_entropy_loss_kernel<double>(d_logits.data(), logits.data(), labels.data(), c.n, c.k,
                                            c.label_smoothing);
          for (double& v : d_logits) v *= d_out[0];
        },
        {{"logits", &logits, &d_logits}});
  }
}

// The public float function computes what the double kernel computes, to float precision.
TEST(CrossEntropyLoss, FloatMatchesDoubleKernel) {
  const int64_t n = 6, k = 9;
  std::vector<double> values = testing::random_doubles(n * k, 5, -8.0, 8.0);
  Tensor logits({n, k});
  for (int64_t i = 0; i < n * k; ++i) logits[i] = static_cast<float>(values[i]);
  for (int64_t i = 0; i < n * k; ++i) values[i] = logits[i];  // the same rounded inputs
  std::vector<int32_t> labels = {0, 8, 3, 3, 5, 1};
  std::vector<double> d_want(n * k);
  double want =
      cross_entropy_loss_kernel<double>(d_want.data(), values.data(), labels.data(), n, k, 0.15);
  Tensor d_logits;
  float loss = cross_entropy_loss(logits, labels, &d_logits, {.label_smoothing = 0.15f});
  EXPECT_NEAR(loss, want, 1e-6 * std::abs(want));
  for (int64_t i = 0; i < n * k; ++i) EXPECT_NEAR(d_logits[i], d_want[i], 1e-8) << i;
}

TEST(NllLoss, HandWorked) {
  Tensor log_probs({2, 3}, {-0.5f, -1.0f, -2.0f, -0.1f, -3.0f, -0.7f});
  std::vector<int32_t> labels = {2, 0};
  Tensor d;
  EXPECT_NEAR(nll_loss(log_probs, labels, &d), (2.0 + 0.1) / 2, 1e-6);
  expect_values(d, {0.0f, 0.0f, -0.5f, -0.5f, 0.0f, 0.0f}, 0.0f);
  EXPECT_NEAR(nll_loss(log_probs, labels), 1.05, 1e-6);
}

TEST(NllLoss, GradientCheck) {
  const int64_t n = 3, k = 4;
  std::vector<double> log_probs = testing::random_doubles(n * k, 3, -4.0, 0.0);
  std::vector<int32_t> labels = {3, 0, 2};
  std::vector<double> d;
  testing::check_gradients(
      [&](std::vector<double>& out) {
        out = {nll_loss_kernel<double>(nullptr, log_probs.data(), labels.data(), n, k)};
      },
      [&](const std::vector<double>& d_out) {
        d.resize(log_probs.size());
        nll_loss_kernel<double>(d.data(), log_probs.data(), labels.data(), n, k);
        for (double& v : d) v *= d_out[0];
      },
      {{"log_probs", &log_probs, &d}});
}

// nll_loss of log_softmax equals cross_entropy_loss of the logits.
TEST(NllLoss, OfLogSoftmaxEqualsCrossEntropy) {
  Tensor logits({2, 3}, {0.3f, -1.2f, 2.0f, 1.0f, 1.5f, -0.5f});
  std::vector<int32_t> labels = {1, 2};
  Tensor log_probs({2, 3});
  for (int i = 0; i < 2; ++i) {
    double sum_exp = 0;
    for (int j = 0; j < 3; ++j) sum_exp += std::exp(double(logits[i * 3 + j]));
    for (int j = 0; j < 3; ++j)
      log_probs[i * 3 + j] = static_cast<float>(logits[i * 3 + j] - std::log(sum_exp));
  }
  EXPECT_NEAR(nll_loss(log_probs, labels), cross_entropy_loss(logits, labels), 1e-6);
}

TEST(MseLoss, HandWorked) {
  Tensor pred({2, 2}, {1.0f, 2.0f, 3.0f, 4.0f});
  Tensor target({2, 2}, {1.0f, 0.0f, 5.0f, 4.5f});
  Tensor d;
  // diffs (0, 2, -2, -0.5): (0 + 4 + 4 + 0.25) / 4; gradient 2 * diff / 4.
  EXPECT_NEAR(mse_loss(pred, target, &d), 2.0625, 1e-7);
  EXPECT_EQ(d.shape(), (Shape{2, 2}));
  expect_values(d, {0.0f, 1.0f, -1.0f, -0.25f}, 0.0f);
  EXPECT_NEAR(mse_loss(pred, target), 2.0625, 1e-7);
}

TEST(MseLoss, GradientCheck) {
  const int64_t numel = 7;
  std::vector<double> pred = testing::random_doubles(numel, 1);
  std::vector<double> target = testing::random_doubles(numel, 2);
  std::vector<double> d;
  testing::check_gradients(
      [&](std::vector<double>& out) {
        out = {mse_loss_kernel<double>(nullptr, pred.data(), target.data(), numel)};
      },
      [&](const std::vector<double>& d_out) {
        d.resize(numel);
        mse_loss_kernel<double>(d.data(), pred.data(), target.data(), numel);
        for (double& v : d) v *= d_out[0];
      },
      {{"pred", &pred, &d}});
}

// ---- errors ----

TEST(CrossEntropyLoss, RejectsLabelOutOfRange) {
  Tensor logits({4, 10});
  std::vector<int32_t> labels = {0, 9, 2, 10};
  EXPECT_EQ(error_of([&] { cross_entropy_loss(logits, labels); }),
            "cross_entropy_loss: label 10 at index 3 is out of range for 10 classes");
  labels = {-1, 0, 0, 0};
  EXPECT_EQ(error_of([&] { cross_entropy_loss(logits, labels); }),
            "cross_entropy_loss: label -1 at index 0 is out of range for 10 classes");
}

TEST(CrossEntropyLoss, RejectsWrongLabelCount) {
  Tensor logits({4, 10});
  std::vector<int32_t> labels = {0, 1, 2};
  EXPECT_EQ(error_of([&] { cross_entropy_loss(logits, labels); }),
            "cross_entropy_loss: got 3 labels for 4 rows of logits (4, 10)");
}

TEST(CrossEntropyLoss, RejectsWrongRank) {
  std::vector<int32_t> labels = {0, 1};
  EXPECT_EQ(error_of([&] { cross_entropy_loss(Tensor({10}), labels); }),
            "cross_entropy_loss: expects logits of shape (N, K), got shape (10)");
  EXPECT_EQ(error_of([&] {
              cross_entropy_loss(Tensor({2, 3, 4}), labels);
            }),
            "cross_entropy_loss: expects logits of shape (N, K), got shape (2, 3, 4)");
}

TEST(CrossEntropyLoss, RejectsZeroClassesAndEmptyBatch) {
  std::vector<int32_t> labels = {0, 0};
  EXPECT_EQ(error_of([&] {
              cross_entropy_loss(Tensor({2, 0}), labels);
            }),
            "cross_entropy_loss: logits have 0 classes");
  EXPECT_EQ(error_of([&] {
              cross_entropy_loss(Tensor({0, 10}), {});
            }),
            "cross_entropy_loss: the batch is empty (logits of shape (0, 10))");
}

TEST(CrossEntropyLoss, RejectsBadLabelSmoothing) {
  Tensor logits({1, 2});
  std::vector<int32_t> labels = {0};
  EXPECT_EQ(
      error_of([&] { cross_entropy_loss(logits, labels, nullptr, {.label_smoothing = 1.5f}); }),
      "cross_entropy_loss: label_smoothing must be in [0, 1], got 1.5");
  EXPECT_THAT(
      error_of([&] { cross_entropy_loss(logits, labels, nullptr, {.label_smoothing = -0.1f}); }),
      HasSubstr("label_smoothing must be in [0, 1], got -0.1"));
}

TEST(CrossEntropyLoss, RejectsGradientAliasingLogits) {
  Tensor logits({1, 2});
  std::vector<int32_t> labels = {0};
  EXPECT_EQ(error_of([&] { cross_entropy_loss(logits, labels, &logits); }),
            "cross_entropy_loss: the gradient tensor must not be the logits tensor");
}

TEST(NllLoss, RejectsBadArguments) {
  std::vector<int32_t> labels = {0, 3};
  EXPECT_EQ(error_of([&] {
              nll_loss(Tensor({2, 3}), labels);
            }),
            "nll_loss: label 3 at index 1 is out of range for 3 classes");
  EXPECT_EQ(error_of([&] {
              nll_loss(Tensor({3, 5}), labels);
            }),
            "nll_loss: got 2 labels for 3 rows of log_probs (3, 5)");
  EXPECT_EQ(error_of([&] { nll_loss(Tensor({6}), labels); }),
            "nll_loss: expects log_probs of shape (N, K), got shape (6)");
  EXPECT_EQ(error_of([&] {
              nll_loss(Tensor({2, 0}), labels);
            }),
            "nll_loss: log_probs have 0 classes");
}

TEST(MseLoss, RejectsBadArguments) {
  EXPECT_EQ(error_of([&] {
              mse_loss(Tensor({2, 3}), Tensor({3, 2}));
            }),
            "mse_loss: pred has shape (2, 3) but target has shape (3, 2)");
  EXPECT_EQ(error_of([&] {
              mse_loss(Tensor({0, 3}), Tensor({0, 3}));
            }),
            "mse_loss: pred is empty (shape (0, 3))");
  Tensor pred({2});
  EXPECT_EQ(error_of([&] { mse_loss(pred, Tensor({2}), &pred); }),
            "mse_loss: the gradient tensor must not be pred or target");
}

// The penalty's gradient is exactly l1 * sign(w) (0 at w = 0), added to what the grad held.
TEST(L1Penalty, AddsL1TimesSignToTheGradient) {
  Parameter w({2, 3}), v({2});
  w.value = Tensor({2, 3}, {0.5f, -2.0f, 0.0f, -0.0f, 3.0f, -1e-30f});
  w.grad = Tensor({2, 3}, {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f});
  v.value = Tensor({2}, {-4.0f, 0.25f});
  v.grad.zero();
  const double penalty = l1_penalty({{"w", &w}, {"v", &v}}, 0.125f);
  EXPECT_EQ(penalty, 0.125 * (0.5 + 2.0 + 3.0 + 1e-30 + 4.0 + 0.25));
  EXPECT_EQ(w.grad.to_vector(), (std::vector<float>{1.125f, 0.875f, 1.0f, 1.0f, 1.125f, 0.875f}));
  EXPECT_EQ(v.grad.to_vector(), (std::vector<float>{-0.125f, 0.125f}));
  EXPECT_EQ(l1_penalty({{"w", &w}}, 0.0f), 0.0);
  EXPECT_EQ(w.grad[0], 1.125f);  // l1 = 0 adds nothing
  EXPECT_EQ(error_of([&] {
              l1_penalty({{"w", &w}}, -1.0f);
            }),
            "l1_penalty: l1 must be at least 0, got -1");
}

}  // namespace
}  // namespace scratchnet
