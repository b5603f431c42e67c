#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/optim/adam.h"
#include "scratchnet/parallel.h"
#include "support/error.h"
#include "support/optim.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using testing::error_of;

using testing::make_param;
using testing::set_grad;
using testing::state_names;
using testing::state_of;

// ---- update rules, worked by hand ----

// At t = 1, m = (1 - b1) g and v = (1 - b2) g^2, so after bias correction the step is
// lr * g / (|g| + eps): lr * sign(g) whatever the gradient's scale, and 0 for g = 0.
TEST(Adam, FirstStepIsLrTimesSignOfGradient) {
  Parameter w = make_param({0.0f, 0.0f, 0.0f, 0.0f, 0.0f});
  Adam adam({{"w", &w}});  // lr 1e-3
  set_grad(w, {0.5f, -3.0f, 1e-3f, 100.0f, 0.0f});
  adam.step();
  const float lr = 1e-3f;
  EXPECT_NEAR(w.value[0], -lr, 1e-9);
  EXPECT_NEAR(w.value[1], lr, 1e-9);
  EXPECT_NEAR(w.value[2], -lr * (1e-3 / (1e-3 + 1e-8)), 1e-9);  // eps shows at small |g|
  EXPECT_NEAR(w.value[3], -lr, 1e-9);
  EXPECT_EQ(w.value[4], 0.0f);
}

TEST(Adam, DefaultsFollowPyTorch) {
  Parameter w = make_param({1.0f});
  Adam adam({{"w", &w}});
  EXPECT_EQ(adam.kind(), "Adam");
  EXPECT_EQ(adam.lr(), 1e-3f);
  EXPECT_EQ(adam.weight_decay(), 0.0f);
  EXPECT_EQ(adam.options().beta1, 0.9f);
  EXPECT_EQ(adam.options().beta2, 0.999f);
  EXPECT_EQ(adam.options().eps, 1e-8f);
}

// Three steps of a scalar, g = 1, -1, 2, lr 0.1:
//   t=1: m = 0.1, v = 0.001, bc1 = 0.1, bc2 = 0.001 -> m^ = 1, v^ = 1, p = -0.1
//   t=2: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999, bc1 = 0.19,
//        bc2 = 0.001999 -> m^ = -1/19, v^ = 1, p = -0.1 + 0.1/19 = -0.0947368
//   t=3: m = -0.009 + 0.2 = 0.191, v = 0.001997001 + 0.004 = 0.005997001, bc1 = 0.271,
//        bc2 = 0.002997001 -> m^ = 0.7047970, sqrt(v^) = 1.4145673, p = -0.0947368 - 0.0498245
TEST(Adam, ThreeStepsByHand) {
  Parameter w = make_param({0.0f});
  Adam adam({{"w", &w}}, {.lr = 0.1f});
  set_grad(w, {1.0f});
  adam.step();
  EXPECT_NEAR(w.value[0], -0.1, 1e-7);
  EXPECT_NEAR(state_of(adam, "w.exp_avg")[0], 0.1, 1e-8);
  EXPECT_NEAR(state_of(adam, "w.exp_avg_sq")[0], 0.001, 1e-10);
  EXPECT_EQ(state_of(adam, "w.step")[0], 1.0f);
  set_grad(w, {-1.0f});
  adam.step();
  EXPECT_NEAR(w.value[0], -0.1 + 0.1 / 19, 1e-7);
  EXPECT_NEAR(state_of(adam, "w.exp_avg")[0], -0.01, 1e-8);
  EXPECT_NEAR(state_of(adam, "w.exp_avg_sq")[0], 0.001999, 1e-10);
  set_grad(w, {2.0f});
  adam.step();
  EXPECT_NEAR(w.value[0], -0.1445613, 1e-6);
  EXPECT_EQ(state_of(adam, "w.step")[0], 3.0f);
}

TEST(Adam, EpsIsAddedAfterTheSquareRoot) {
  Parameter w = make_param({0.0f});
  Adam adam({{"w", &w}}, {.lr = 0.1f, .eps = 1.0f});
  set_grad(w, {1.0f});
  adam.step();  // 0.1 * 1 / (1 + 1)
  EXPECT_NEAR(w.value[0], -0.05, 1e-8);
}

// Adam adds weight_decay * p to the gradient: with g = 0 the first step is lr * sign(p).
TEST(Adam, WeightDecayIsL2OnTheGradient) {
  Parameter w = make_param({1.0f, -2.0f});
  Adam adam({{"w", &w}}, {.lr = 0.1f, .weight_decay = 0.5f});
  set_grad(w, {0.0f, 0.0f});
  adam.step();
  EXPECT_NEAR(w.value[0], 0.9, 1e-7);
  EXPECT_NEAR(w.value[1], -1.9, 1e-7);
  EXPECT_NEAR(state_of(adam, "w.exp_avg")[0], 0.1 * 0.5, 1e-8);  // m sees g + wd * p
}

// AdamW shrinks p by (1 - lr * wd) and keeps the decay out of m and v.
TEST(AdamW, WeightDecayIsDecoupled) {
  Parameter w = make_param({1.0f});
  AdamW adamw({{"w", &w}}, {.lr = 0.1f, .weight_decay = 0.5f});
  set_grad(w, {0.0f});
  adamw.step();  // p = 1 * (1 - 0.05); m = v = 0 so the Adam part is 0 / eps = 0
  EXPECT_FLOAT_EQ(w.value[0], 0.95f);
  EXPECT_EQ(state_of(adamw, "w.exp_avg")[0], 0.0f);
  adamw.step();
  EXPECT_FLOAT_EQ(w.value[0], 0.9025f);
}

TEST(AdamW, DecayThenAdamStep) {
  Parameter w = make_param({2.0f});
  AdamW adamw({{"w", &w}}, {.lr = 0.1f, .weight_decay = 0.1f});
  set_grad(w, {1.0f});
  adamw.step();  // p = 2 * (1 - 0.01) = 1.98, then - 0.1 * sign(1)
  EXPECT_NEAR(w.value[0], 1.88, 1e-6);
}

TEST(AdamW, DefaultsFollowPyTorch) {
  EXPECT_EQ(AdamWOptions{}.weight_decay, 0.01f);
  Parameter w = make_param({1.0f});
  AdamW adamw({{"w", &w}});
  EXPECT_EQ(adamw.kind(), "AdamW");
  EXPECT_EQ(adamw.weight_decay(), 0.01f);
  EXPECT_EQ(adamw.lr(), 1e-3f);
}

TEST(AdamW, WithoutWeightDecayEqualsAdam) {
  Parameter a = make_param({0.5f, -1.0f, 2.0f}), b = a;
  Adam adam({{"w", &a}}, {.lr = 0.05f});
  AdamW adamw({{"w", &b}}, {.lr = 0.05f, .weight_decay = 0.0f});
  for (int t = 0; t < 5; ++t) {
    std::vector<float> g = {1.0f - t, 0.5f * t, -2.0f};
    set_grad(a, g);
    set_grad(b, g);
    adam.step();
    adamw.step();
  }
  EXPECT_EQ(std::memcmp(a.value.data(), b.value.data(), 3 * sizeof(float)), 0);
}

// ---- groups, learning rates, frozen parameters, state ----

TEST(Adam, GroupsTakeTheirOwnLr) {
  Parameter a = make_param({0.0f}), b = make_param({0.0f});
  Adam adam(std::vector<ParamGroup>{{.params = {{"a", &a}}, .lr = 0.1f}, {.params = {{"b", &b}}}},
            {.lr = 0.01f});
  set_grad(a, {3.0f});
  set_grad(b, {3.0f});
  adam.step();
  EXPECT_NEAR(a.value[0], -0.1, 1e-7);
  EXPECT_NEAR(b.value[0], -0.01, 1e-8);
  adam.set_lr(0.5f);
  set_grad(a, {0.0f});
  set_grad(b, {0.0f});
  adam.step();
  // t = 2, g = 0: m^ = 0.9 * 0.3 / 0.19, sqrt(v^) = sqrt(0.999 * 0.009 / 0.001999); equal
  // for both, so both move by 0.5 * m^ / sqrt(v^).
  const double move = 0.5 * (0.27 / 0.19) / std::sqrt(0.008991 / 0.001999);
  EXPECT_NEAR(a.value[0], -0.1 - move, 1e-6);
  EXPECT_NEAR(b.value[0], -0.01 - move, 1e-6);
}

TEST(Adam, FrozenParameterIsUntouchedAndHasNoState) {
  Parameter w = make_param({1.0f, 2.0f}), frozen = make_param({0.25f, -0.5f});
  frozen.trainable = false;
  Adam adam({{"0.weight", &w}, {"0.bias", &frozen}}, {.weight_decay = 0.1f});
  set_grad(w, {1.0f, 1.0f});
  set_grad(frozen, {1.0f, 1.0f});
  for (int i = 0; i < 3; ++i) adam.step();
  EXPECT_EQ(frozen.value[0], 0.25f);
  EXPECT_EQ(frozen.value[1], -0.5f);
  EXPECT_THAT(state_names(adam),
              ElementsAre("0.weight.step", "0.weight.exp_avg", "0.weight.exp_avg_sq"));
}

// Bias correction counts the parameter's own steps: unfrozen after two steps, its first
// update is lr * sign(g) again.
TEST(Adam, UnfrozenParameterStartsAtStepOne) {
  Parameter a = make_param({0.0f}), b = make_param({0.0f});
  b.trainable = false;
  Adam adam({{"a", &a}, {"b", &b}}, {.lr = 0.1f});
  set_grad(a, {1.0f});
  set_grad(b, {1.0f});
  adam.step();
  adam.step();
  b.trainable = true;
  adam.step();
  EXPECT_EQ(state_of(adam, "a.step")[0], 3.0f);
  EXPECT_EQ(state_of(adam, "b.step")[0], 1.0f);
  EXPECT_NEAR(b.value[0], -0.1, 1e-7);
  EXPECT_EQ(adam.steps(), 3);
}

TEST(Adam, StateNamesShapesAndValues) {
  Parameter w({2, 3}), bias({2});
  AdamW adamw({{"1.weight", &w}, {"1.bias", &bias}});
  EXPECT_THAT(state_names(adamw),
              ElementsAre("1.weight.step", "1.weight.exp_avg", "1.weight.exp_avg_sq", "1.bias.step",
                          "1.bias.exp_avg", "1.bias.exp_avg_sq"));
  std::vector<NamedBuffer> state = adamw.state();
  EXPECT_EQ(state[0].tensor->numel(), 1);
  EXPECT_EQ(state[1].tensor->shape(), (Shape{2, 3}));
  EXPECT_EQ(state[5].tensor->shape(), (Shape{2}));
  for (int i = 0; i < 6; ++i) w.grad[i] = static_cast<float>(i);
  bias.grad.fill(-2.0f);
  adamw.step();
  EXPECT_EQ((*state[0].tensor)[0], 1.0f);
  EXPECT_NEAR((*state[1].tensor)[5], 0.1 * 5, 1e-7);     // (1 - b1) g
  EXPECT_NEAR((*state[2].tensor)[5], 0.001 * 25, 1e-8);  // (1 - b2) g^2
  EXPECT_NEAR((*state[4].tensor)[1], -0.2, 1e-7);
}

TEST(Adam, RestoredStateResumesExactly) {
  Parameter a = make_param({0.3f, -1.0f});
  AdamOptions options{.lr = 0.01f, .weight_decay = 0.001f};
  Adam first({{"a", &a}}, options);
  for (int t = 0; t < 4; ++t) {
    set_grad(a, {1.0f - 0.5f * t, 0.25f * t});
    first.step();
  }
  Parameter b = a;
  Adam second({{"a", &b}}, options);
  std::vector<NamedBuffer> saved = first.state(), fresh = second.state();
  ASSERT_EQ(saved.size(), 3u);
  ASSERT_EQ(fresh.size(), 3u);
  for (size_t i = 0; i < saved.size(); ++i) *fresh[i].tensor = *saved[i].tensor;
  first.step();
  second.step();
  EXPECT_EQ(std::memcmp(a.value.data(), b.value.data(), 2 * sizeof(float)), 0);
}

TEST(Adam, LargeParameterIsBitIdenticalForAnyThreadCount) {
  const int64_t n = 70001;
  std::vector<float> init(n), grad(n);
  for (int64_t i = 0; i < n; ++i) {
    init[i] = std::sin(0.002f * static_cast<float>(i));
    grad[i] = std::cos(0.005f * static_cast<float>(i)) * 1e-2f;
  }
  auto run = [&](int threads) {
    set_num_threads(threads);
    Parameter w = make_param(init);
    set_grad(w, grad);
    AdamW adamw({{"w", &w}}, {.lr = 0.01f});
    for (int i = 0; i < 3; ++i) adamw.step();
    return w.value.to_vector();
  };
  const int saved = num_threads();
  std::vector<float> one = run(1), two = run(2);
  set_num_threads(saved);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), n * sizeof(float)), 0);
  Parameter last = make_param({init[n - 1]});
  set_grad(last, {grad[n - 1]});
  AdamW adamw({{"w", &last}}, {.lr = 0.01f});
  for (int i = 0; i < 3; ++i) adamw.step();
  EXPECT_EQ(last.value[0], one[n - 1]);
}

// ---- convergence ----

// f(x) = 1/2 sum_i a_i (x_i - c_i)^2; Adam with a decaying lr settles at c.
TEST(Adam, MinimisesAQuadratic) {
  const std::vector<float> a = {1.0f, 4.0f, 0.5f}, c = {3.0f, -1.0f, 0.5f};
  Parameter x = make_param({0.0f, 0.0f, 0.0f});
  Adam adam({{"x", &x}}, {.lr = 0.1f});
  for (int step = 0; step < 1500; ++step) {
    if (step == 500) adam.set_lr(0.01f);
    if (step == 1000) adam.set_lr(0.001f);
    adam.zero_grad();
    for (int i = 0; i < 3; ++i) x.grad[i] = a[i] * (x.value[i] - c[i]);
    adam.step();
  }
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(x.value[i], c[i], 1e-3f) << i;
}

// ---- bad options ----

TEST(Adam, RejectsBadOptions) {
  Parameter w = make_param({1.0f});
  std::vector<NamedParameter> params = {{"w", &w}};
  EXPECT_EQ(error_of([&] { Adam(params, {.lr = -0.001f}); }),
            "Adam: lr must be at least 0, got -0.001");
  EXPECT_EQ(error_of([&] { Adam(params, {.beta1 = 1.0f}); }),
            "Adam: beta1 must be in [0, 1), got 1");
  EXPECT_EQ(error_of([&] { Adam(params, {.beta1 = -0.1f}); }),
            "Adam: beta1 must be in [0, 1), got -0.1");
  EXPECT_EQ(error_of([&] { Adam(params, {.beta2 = 1.5f}); }),
            "Adam: beta2 must be in [0, 1), got 1.5");
  EXPECT_EQ(error_of([&] { Adam(params, {.eps = -1e-8f}); }),
            "Adam: eps must be at least 0, got -1e-08");
  EXPECT_EQ(error_of([&] { Adam(params, {.weight_decay = -1.0f}); }),
            "Adam: weight_decay must be at least 0, got -1");
  EXPECT_EQ(error_of([&] { AdamW(params, {.weight_decay = -1.0f}); }),
            "AdamW: weight_decay must be at least 0, got -1");
  EXPECT_EQ(error_of([&] { AdamW(params, {.beta2 = 1.0f}); }),
            "AdamW: beta2 must be in [0, 1), got 1");
  EXPECT_EQ(error_of([&] { AdamW(std::vector<NamedParameter>{}); }),
            "AdamW: got an empty parameter list");
}

TEST(Adam, RejectsAMisshapenGradient) {
  Parameter w({2, 2});
  Adam adam({{"0.weight", &w}});
  w.grad = Tensor({4});
  EXPECT_EQ(error_of([&] { adam.step(); }),
            "Adam: parameter 0.weight has a gradient of shape (4), expected (2, 2) like its value");
  EXPECT_EQ(state_of(adam, "0.weight.step")[0], 0.0f);
}

}  // namespace
}  // namespace scratchnet
