// Tests for Sgd and for what every optimiser shares (optimizer.h): groups, learning rates,
// frozen parameters, state names, checkpoint restore and option checks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/optim/sgd.h"
#include "scratchnet/parallel.h"
#include "support/error.h"
#include "support/optim.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::FloatEq;
using ::testing::HasSubstr;

using testing::make_param;
using testing::set_grad;
using testing::state_names;
using testing::state_of;

// ---- update rules, worked by hand ----

TEST(Sgd, PlainStep) {
  Parameter w = make_param({1.0f, -2.0f, 0.5f});
  Sgd sgd({{"w", &w}}, {.lr = 0.1f});
  set_grad(w, {0.5f, 1.0f, -2.0f});
  sgd.step();
  // p - lr * g
  EXPECT_THAT(w.value.to_vector(), ElementsAre(FloatEq(0.95f), FloatEq(-2.1f), FloatEq(0.7f)));
  EXPECT_THAT(w.grad.to_vector(), ElementsAre(0.5f, 1.0f, -2.0f));  // grads are left alone
  EXPECT_TRUE(sgd.state().empty());                                 // no momentum, no state
  EXPECT_EQ(sgd.steps(), 1);
}

TEST(Sgd, DefaultsFollowPyTorch) {
  Parameter w = make_param({1.0f});
  Sgd sgd({{"w", &w}});
  EXPECT_EQ(sgd.kind(), "SGD");
  EXPECT_EQ(sgd.lr(), 0.01f);
  EXPECT_EQ(sgd.weight_decay(), 0.0f);
  EXPECT_EQ(sgd.options().momentum, 0.0f);
  EXPECT_EQ(sgd.options().dampening, 0.0f);
  EXPECT_FALSE(sgd.options().nesterov);
}

TEST(Sgd, WeightDecayAddsToTheGradient) {
  Parameter w = make_param({2.0f});
  Sgd sgd({{"w", &w}}, {.lr = 0.1f, .weight_decay = 0.5f});
  set_grad(w, {1.0f});
  sgd.step();  // d = 1 + 0.5 * 2 = 2, p = 2 - 0.2
  EXPECT_FLOAT_EQ(w.value[0], 1.8f);
  sgd.step();  // d = 1 + 0.5 * 1.8 = 1.9, p = 1.8 - 0.19
  EXPECT_FLOAT_EQ(w.value[0], 1.61f);
}

TEST(Sgd, MomentumMultiStep) {
  Parameter w = make_param({0.0f});
  Sgd sgd({{"w", &w}}, {.lr = 0.1f, .momentum = 0.9f});
  set_grad(w, {1.0f});
  sgd.step();  // buf = 1 (first step: the gradient itself), p = -0.1
  EXPECT_FLOAT_EQ(w.value[0], -0.1f);
  EXPECT_FLOAT_EQ(state_of(sgd, "w.momentum_buffer")[0], 1.0f);
  set_grad(w, {2.0f});
  sgd.step();  // buf = 0.9 * 1 + 2 = 2.9, p = -0.1 - 0.29
  EXPECT_FLOAT_EQ(state_of(sgd, "w.momentum_buffer")[0], 2.9f);
  EXPECT_FLOAT_EQ(w.value[0], -0.39f);
  set_grad(w, {-1.0f});
  sgd.step();  // buf = 0.9 * 2.9 - 1 = 1.61, p = -0.39 - 0.161
  EXPECT_FLOAT_EQ(state_of(sgd, "w.momentum_buffer")[0], 1.61f);
  EXPECT_FLOAT_EQ(w.value[0], -0.551f);
  EXPECT_EQ(state_of(sgd, "w.step")[0], 3.0f);
}

TEST(Sgd, DampeningSparesTheFirstStep) {
  Parameter w = make_param({0.0f});
  Sgd sgd({{"w", &w}}, {.lr = 0.1f, .momentum = 0.9f, .dampening = 0.5f});
  set_grad(w, {1.0f});
  sgd.step();  // buf = 1, undamped, p = -0.1
  EXPECT_FLOAT_EQ(w.value[0], -0.1f);
  set_grad(w, {2.0f});
  sgd.step();  // buf = 0.9 * 1 + 0.5 * 2 = 1.9, p = -0.1 - 0.19
  EXPECT_FLOAT_EQ(state_of(sgd, "w.momentum_buffer")[0], 1.9f);
  EXPECT_FLOAT_EQ(w.value[0], -0.29f);
}

TEST(Sgd, Nesterov) {
  Parameter w = make_param({0.0f});
  Sgd sgd({{"w", &w}}, {.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
  set_grad(w, {1.0f});
  sgd.step();  // buf = 1, d = 1 + 0.9 * 1 = 1.9, p = -0.19
  EXPECT_FLOAT_EQ(w.value[0], -0.19f);
  set_grad(w, {2.0f});
  sgd.step();  // buf = 0.9 + 2 = 2.9, d = 2 + 0.9 * 2.9 = 4.61, p = -0.19 - 0.461
  EXPECT_FLOAT_EQ(state_of(sgd, "w.momentum_buffer")[0], 2.9f);
  EXPECT_FLOAT_EQ(w.value[0], -0.651f);
}

TEST(Sgd, MomentumWithWeightDecay) {
  Parameter w = make_param({1.0f});
  Sgd sgd({{"w", &w}}, {.lr = 0.1f, .momentum = 0.5f, .weight_decay = 0.1f});
  set_grad(w, {0.0f});
  sgd.step();  // d = 0.1 * 1 = 0.1, buf = 0.1, p = 1 - 0.01
  EXPECT_FLOAT_EQ(w.value[0], 0.99f);
  sgd.step();  // d = 0.1 * 0.99 = 0.099, buf = 0.05 + 0.099 = 0.149, p = 0.99 - 0.0149
  EXPECT_FLOAT_EQ(state_of(sgd, "w.momentum_buffer")[0], 0.149f);
  EXPECT_FLOAT_EQ(w.value[0], 0.9751f);
}

// ---- groups and learning rates ----

TEST(Sgd, GroupsTakeTheirOwnLrAndWeightDecay) {
  Parameter a = make_param({1.0f}), b = make_param({1.0f}), c = make_param({1.0f});
  Sgd sgd(std::vector<ParamGroup>{{.params = {{"a", &a}}, .lr = 0.1f},
                                  {.params = {{"b", &b}}},
                                  {.params = {{"c", &c}}, .weight_decay = 1.0f}},
          {.lr = 0.01f});
  ASSERT_EQ(sgd.num_groups(), 3u);
  EXPECT_EQ(sgd.lr(0), 0.1f);
  EXPECT_EQ(sgd.lr(1), 0.01f);
  EXPECT_EQ(sgd.weight_decay(1), 0.0f);
  EXPECT_EQ(sgd.weight_decay(2), 1.0f);
  for (Parameter* p : {&a, &b, &c}) set_grad(*p, {1.0f});
  sgd.step();
  EXPECT_FLOAT_EQ(a.value[0], 0.9f);   // 1 - 0.1 * 1
  EXPECT_FLOAT_EQ(b.value[0], 0.99f);  // 1 - 0.01 * 1
  EXPECT_FLOAT_EQ(c.value[0], 0.98f);  // 1 - 0.01 * (1 + 1 * 1)
}

TEST(Sgd, SetLrSetsEveryGroupAndSetGroupLrOne) {
  Parameter a = make_param({1.0f}), b = make_param({1.0f});
  Sgd sgd(std::vector<ParamGroup>{{.params = {{"a", &a}}, .lr = 0.1f}, {.params = {{"b", &b}}}},
          {.lr = 0.01f});
  sgd.set_lr(0.5f);
  EXPECT_EQ(sgd.lr(0), 0.5f);
  EXPECT_EQ(sgd.lr(1), 0.5f);
  sgd.set_group_lr(1, 0.25f);
  EXPECT_EQ(sgd.lr(0), 0.5f);
  EXPECT_EQ(sgd.lr(1), 0.25f);
  set_grad(a, {1.0f});
  set_grad(b, {1.0f});
  sgd.step();
  EXPECT_FLOAT_EQ(a.value[0], 0.5f);
  EXPECT_FLOAT_EQ(b.value[0], 0.75f);
}

TEST(Sgd, ZeroLrLeavesParametersUnchanged) {
  Parameter w = make_param({1.5f});
  Sgd sgd({{"w", &w}}, {.lr = 0.0f, .momentum = 0.9f});
  set_grad(w, {3.0f});
  sgd.step();
  EXPECT_EQ(w.value[0], 1.5f);
  EXPECT_EQ(state_of(sgd, "w.momentum_buffer")[0], 3.0f);  // the buffer still accumulates
}

TEST(Sgd, ZeroGradZeroesEveryGradient) {
  Parameter a = make_param({1.0f, 2.0f}), b = make_param({3.0f});
  b.trainable = false;
  Sgd sgd({{"a", &a}, {"b", &b}});
  set_grad(a, {1.0f, 2.0f});
  set_grad(b, {4.0f});
  sgd.zero_grad();
  EXPECT_THAT(a.grad.to_vector(), ElementsAre(0.0f, 0.0f));
  EXPECT_THAT(b.grad.to_vector(), ElementsAre(0.0f));
}

TEST(Sgd, StepsCountsAndCanBeRestored) {
  Parameter w = make_param({1.0f});
  Sgd sgd({{"w", &w}});
  EXPECT_EQ(sgd.steps(), 0);
  sgd.step();
  sgd.step();
  EXPECT_EQ(sgd.steps(), 2);
  sgd.set_steps(40);
  sgd.step();
  EXPECT_EQ(sgd.steps(), 41);
}

// ---- frozen parameters and state ----

TEST(Sgd, FrozenParameterIsUntouchedAndHasNoState) {
  Parameter a = make_param({1.0f, 2.0f}), frozen = make_param({0.1f, -0.3f, 7.0f});
  frozen.trainable = false;
  Sgd sgd({{"0.weight", &a}, {"0.bias", &frozen}},
          {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f});
  Tensor before = frozen.value;
  set_grad(a, {1.0f, 1.0f});
  set_grad(frozen, {5.0f, 5.0f, 5.0f});
  for (int i = 0; i < 3; ++i) sgd.step();
  EXPECT_EQ(std::memcmp(before.data(), frozen.value.data(), 3 * sizeof(float)), 0);
  EXPECT_THAT(frozen.grad.to_vector(), ElementsAre(5.0f, 5.0f, 5.0f));
  EXPECT_THAT(state_names(sgd), ElementsAre("0.weight.momentum_buffer", "0.weight.step"));
  EXPECT_NE(a.value[0], 1.0f);
}

// A parameter unfrozen later starts its own momentum from its first step.
TEST(Sgd, UnfrozenParameterGetsStateAtItsFirstStep) {
  Parameter a = make_param({0.0f}), b = make_param({0.0f});
  b.trainable = false;
  Sgd sgd({{"a", &a}, {"b", &b}}, {.lr = 0.1f, .momentum = 0.9f});
  set_grad(a, {1.0f});
  set_grad(b, {1.0f});
  sgd.step();
  sgd.step();
  b.trainable = true;
  set_grad(b, {2.0f});
  sgd.step();
  EXPECT_THAT(state_names(sgd),
              ElementsAre("a.momentum_buffer", "a.step", "b.momentum_buffer", "b.step"));
  EXPECT_EQ(state_of(sgd, "a.step")[0], 3.0f);
  EXPECT_EQ(state_of(sgd, "b.step")[0], 1.0f);
  EXPECT_FLOAT_EQ(state_of(sgd, "b.momentum_buffer")[0], 2.0f);  // the gradient itself
  EXPECT_FLOAT_EQ(b.value[0], -0.2f);
}

TEST(Sgd, StateNamesAndShapes) {
  Parameter w({4, 3}), bias({4}), w2({2, 4});
  Sgd sgd({{"0.weight", &w}, {"0.bias", &bias}, {"3.weight", &w2}}, {.momentum = 0.9f});
  std::vector<NamedBuffer> state = sgd.state();  // created with the optimiser
  ASSERT_EQ(state.size(), 6u);
  EXPECT_THAT(state_names(sgd),
              ElementsAre("0.weight.momentum_buffer", "0.weight.step", "0.bias.momentum_buffer",
                          "0.bias.step", "3.weight.momentum_buffer", "3.weight.step"));
  EXPECT_EQ(state[0].tensor->shape(), (Shape{4, 3}));
  EXPECT_EQ(state[1].tensor->shape(), Shape{});
  EXPECT_EQ(state[1].tensor->numel(), 1);
  EXPECT_EQ(state[4].tensor->shape(), (Shape{2, 4}));
  for (const NamedBuffer& b : state)
    for (float v : *b.tensor) EXPECT_EQ(v, 0.0f) << b.name;
}

// Writing saved state into a fresh optimiser resumes the run exactly.
TEST(Sgd, RestoredStateResumesExactly) {
  Parameter a = make_param({0.3f, -1.0f});
  SgdOptions options{.lr = 0.05f, .momentum = 0.9f, .dampening = 0.2f};
  Sgd first({{"a", &a}}, options);
  set_grad(a, {1.0f, 0.5f});
  first.step();
  set_grad(a, {-0.25f, 2.0f});
  first.step();

  Parameter b = a;
  Sgd second({{"a", &b}}, options);
  std::vector<NamedBuffer> saved = first.state(), fresh = second.state();
  ASSERT_EQ(saved.size(), fresh.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    ASSERT_EQ(saved[i].name, fresh[i].name);
    *fresh[i].tensor = *saved[i].tensor;
  }
  second.set_steps(first.steps());
  first.step();
  second.step();
  EXPECT_EQ(std::memcmp(a.value.data(), b.value.data(), 2 * sizeof(float)), 0);
  EXPECT_EQ(second.steps(), 3);
}

// ---- threads ----

// A parameter large enough to be split over threads updates exactly as element-wise alone.
TEST(Sgd, LargeParameterIsBitIdenticalForAnyThreadCount) {
  const int64_t n = 100003;
  std::vector<float> init(n), grad(n);
  for (int64_t i = 0; i < n; ++i) {
    init[i] = std::sin(0.001f * static_cast<float>(i));
    grad[i] = std::cos(0.003f * static_cast<float>(i));
  }
  auto run = [&](int threads) {
    set_num_threads(threads);
    Parameter w = make_param(init);
    set_grad(w, grad);
    Sgd sgd({{"w", &w}}, {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true});
    for (int i = 0; i < 3; ++i) sgd.step();
    return w.value.to_vector();
  };
  const int saved = num_threads();
  std::vector<float> one = run(1), two = run(2), three = run(3);
  set_num_threads(saved);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), n * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(one.data(), three.data(), n * sizeof(float)), 0);
  // The last element on its own (a one-element parameter never uses threads).
  Parameter last = make_param({init[n - 1]});
  set_grad(last, {grad[n - 1]});
  Sgd sgd({{"w", &last}}, {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true});
  for (int i = 0; i < 3; ++i) sgd.step();
  EXPECT_EQ(last.value[0], one[n - 1]);
}

// ---- convergence ----

// f(x) = 1/2 sum_i a_i (x_i - c_i)^2 has its minimum at c.
TEST(Sgd, MinimisesAQuadratic) {
  const std::vector<float> a = {1.0f, 4.0f, 0.5f}, c = {3.0f, -1.0f, 0.5f};
  Parameter x = make_param({0.0f, 0.0f, 0.0f});
  Sgd sgd({{"x", &x}}, {.lr = 0.1f, .momentum = 0.9f});
  for (int step = 0; step < 400; ++step) {
    sgd.zero_grad();
    for (int i = 0; i < 3; ++i) x.grad[i] = a[i] * (x.value[i] - c[i]);
    sgd.step();
  }
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(x.value[i], c[i], 1e-4f) << i;
}

// ---- bad options, groups and gradients ----

TEST(Sgd, RejectsBadOptions) {
  Parameter w = make_param({1.0f});
  std::vector<NamedParameter> params = {{"w", &w}};
  EXPECT_EQ(error_of([&] { Sgd(params, {.momentum = -0.5f}); }),
            "SGD: momentum must be at least 0, got -0.5");
  EXPECT_EQ(error_of([&] { Sgd(params, {.lr = -1.0f}); }), "SGD: lr must be at least 0, got -1");
  EXPECT_EQ(error_of([&] { Sgd(params, {.weight_decay = -0.1f}); }),
            "SGD: weight_decay must be at least 0, got -0.1");
  EXPECT_EQ(error_of([&] { Sgd(params, {.nesterov = true}); }),
            "SGD: nesterov requires momentum > 0 and dampening 0, got momentum 0 and dampening 0");
  EXPECT_EQ(error_of([&] { Sgd(params, {.momentum = 0.9f, .dampening = 0.1f, .nesterov = true}); }),
            "SGD: nesterov requires momentum > 0 and dampening 0, got momentum 0.9 and dampening "
            "0.1");
  EXPECT_EQ(error_of([&] { Sgd(params, {.lr = std::numeric_limits<float>::quiet_NaN()}); }),
            "SGD: lr must be at least 0, got nan");
}

TEST(Sgd, RejectsBadGroups) {
  Parameter a = make_param({1.0f}), b = make_param({2.0f});
  EXPECT_EQ(
      error_of([&] {
        Sgd(std::vector<ParamGroup>{{.params = {{"a", &a}}}, {.params = {{"b", &b}}, .lr = -1.0f}});
      }),
      "SGD: lr of group 1 must be at least 0, got -1");
  EXPECT_EQ(error_of([&] {
              Sgd(std::vector<ParamGroup>{{.params = {{"a", &a}}, .weight_decay = -2.0f}});
            }),
            "SGD: weight_decay of group 0 must be at least 0, got -2");
  EXPECT_EQ(error_of([&] { Sgd(std::vector<NamedParameter>{}); }),
            "SGD: got an empty parameter list");
  EXPECT_EQ(error_of([&] { Sgd(std::vector<ParamGroup>{{.params = {}}}); }),
            "SGD: got an empty parameter list");
  EXPECT_EQ(error_of([&] {
              Sgd(std::vector<ParamGroup>{{.params = {{"a", &a}}}, {.params = {{"a2", &a}}}});
            }),
            "SGD: parameter a2 appears more than once");
  EXPECT_EQ(error_of([&] {
              Sgd({{"w", &a}, {"w", &b}});
            }),
            "SGD: two parameters are named w; names must be unique (they name the state)");
  EXPECT_EQ(error_of([&] { Sgd({{"w", nullptr}}); }), "SGD: parameter w is null");
}

TEST(Sgd, RejectsBadLrCallsAndGroupIndices) {
  Parameter w = make_param({1.0f});
  Sgd sgd({{"w", &w}});
  EXPECT_EQ(error_of([&] { sgd.set_lr(-0.1f); }), "SGD: lr must be at least 0, got -0.1");
  EXPECT_EQ(error_of([&] { sgd.set_group_lr(0, -2.0f); }), "SGD: lr must be at least 0, got -2");
  EXPECT_EQ(error_of([&] { sgd.set_group_lr(1, 0.1f); }),
            "SGD: group 1 is out of range (the optimiser has 1 groups)");
  EXPECT_EQ(error_of([&] { sgd.lr(5); }),
            "SGD: group 5 is out of range (the optimiser has 1 groups)");
  EXPECT_THAT(error_of([&] { sgd.weight_decay(2); }), HasSubstr("group 2 is out of range"));
  EXPECT_EQ(error_of([&] { sgd.set_steps(-1); }), "SGD: steps must be at least 0, got -1");
  EXPECT_EQ(sgd.lr(), 0.01f);  // unchanged by the rejected calls
}

// A bad gradient anywhere stops the step before any parameter changes.
TEST(Sgd, RejectsAMisshapenGradientBeforeChangingAnything) {
  Parameter a = make_param({1.0f, 2.0f}), b = make_param({1.0f, 2.0f, 3.0f});
  Sgd sgd({{"a", &a}, {"b", &b}}, {.lr = 0.1f});
  set_grad(a, {1.0f, 1.0f});
  b.grad = Tensor({2});
  EXPECT_EQ(error_of([&] { sgd.step(); }),
            "SGD: parameter b has a gradient of shape (2), expected (3) like its value");
  EXPECT_THAT(a.value.to_vector(), ElementsAre(1.0f, 2.0f));
  EXPECT_EQ(sgd.steps(), 0);
}

TEST(Sgd, RejectsRestoredStateOfTheWrongShape) {
  Parameter w = make_param({1.0f, 2.0f});
  Sgd sgd({{"w", &w}}, {.momentum = 0.9f});
  state_of(sgd, "w.momentum_buffer") = Tensor({3});
  set_grad(w, {1.0f, 1.0f});
  EXPECT_EQ(error_of([&] { sgd.step(); }),
            "SGD: state w.momentum_buffer has shape (3), expected (2)");
}

// ---- widen ----

TEST(Optimizer, WidenGivesTheDecimalAFloatWasWrittenAs) {
  EXPECT_EQ(Optimizer::widen(0.9f), 0.9);
  EXPECT_EQ(Optimizer::widen(0.999f), 0.999);
  EXPECT_EQ(Optimizer::widen(1e-3f), 1e-3);
  EXPECT_EQ(Optimizer::widen(1e-8f), 1e-8);
  EXPECT_EQ(Optimizer::widen(-2.5f), -2.5);
  EXPECT_EQ(Optimizer::widen(0.0f), 0.0);
  EXPECT_EQ(Optimizer::widen(std::numeric_limits<float>::infinity()),
            std::numeric_limits<double>::infinity());
  EXPECT_NE(static_cast<double>(0.9f), 0.9);  // why widen exists
}

}  // namespace
}  // namespace scratchnet
