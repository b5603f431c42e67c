#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/layers/linear.h"
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

std::vector<float> random_floats(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
  return v;
}

// in (2, 3), weight (2, 3), bias (2) with small integers; out = in @ weight^T + bias.
Linear small_layer() {
  Linear layer({.in_features = 3, .out_features = 2});
  layer.weight().value = Tensor({2, 3}, {1, 0, -1, 2, 1, 0.5f});
  layer.bias().value = Tensor({2}, {0.5f, -1});
  return layer;
}

TEST(Linear, ForwardByHand) {
  Linear layer = small_layer();
  Tensor in({2, 3}, {1, 2, 3, -1, 0, 2});
  Tensor out({2, 2});
  layer.forward(out, in, Mode::kTrain);
  // row 0: (1 + 0 - 3) + 0.5, (2 + 2 + 1.5) - 1; row 1: (-1 + 0 - 2) + 0.5, (-2 + 0 + 1) - 1
  EXPECT_THAT(out.to_vector(), ElementsAre(-1.5f, 4.5f, -2.5f, -2.0f));
}

TEST(Linear, ForwardByHandWideAndManyRows) {
  // F_in = 10 exercises the vector lanes and the tail, N = 5 a block of rows and a remainder.
  // in[n, i] = (n + 1) * (i + 1); weight row 0 all ones, row 1 alternating +1, -1; no bias.
  Linear layer({.in_features = 10, .out_features = 2, .bias = false});
  for (int i = 0; i < 10; ++i) {
    layer.weight().value[i] = 1;
    layer.weight().value[10 + i] = i % 2 == 0 ? 1.0f : -1.0f;
  }
  Tensor in({5, 10});
  for (int n = 0; n < 5; ++n)
    for (int i = 0; i < 10; ++i) in[n * 10 + i] = static_cast<float>((n + 1) * (i + 1));
  Tensor out({5, 2});
  layer.forward(out, in, Mode::kEval);
  // sum 1..10 = 55; 1 - 2 + 3 - ... - 10 = -5; both scaled by n + 1.
  for (int n = 0; n < 5; ++n) {
    EXPECT_EQ(out[n * 2], 55.0f * (n + 1)) << "n=" << n;
    EXPECT_EQ(out[n * 2 + 1], -5.0f * (n + 1)) << "n=" << n;
  }
}

TEST(Linear, BackwardByHandOverwritesInputGradAndAddsParamGrads) {
  Linear layer = small_layer();
  Tensor in({2, 3}, {1, 2, 3, -1, 0, 2});
  Tensor out({2, 2});
  layer.forward(out, in, Mode::kTrain);
  Tensor d_out({2, 2}, {1, 2, 0, -1});
  Tensor d_in = Tensor::full({2, 3}, 7.0f);  // must be overwritten, not added into
  layer.backward(d_in, d_out, in, out);
  // d_in = d_out @ weight: 1*(1, 0, -1) + 2*(2, 1, 0.5); -1*(2, 1, 0.5)
  EXPECT_THAT(d_in.to_vector(), ElementsAre(5, 2, 0, -2, -1, -0.5f));
  // d_weight = d_out^T @ in: (1, 2, 3); 2*(1, 2, 3) - (-1, 0, 2)
  EXPECT_THAT(layer.weight().grad.to_vector(), ElementsAre(1, 2, 3, 3, 4, 4));
  EXPECT_THAT(layer.bias().grad.to_vector(), ElementsAre(1, 1));

  layer.backward(d_in, d_out, in, out);
  EXPECT_THAT(d_in.to_vector(), ElementsAre(5, 2, 0, -2, -1, -0.5f));
  EXPECT_THAT(layer.weight().grad.to_vector(), ElementsAre(2, 4, 6, 6, 8, 8));
  EXPECT_THAT(layer.bias().grad.to_vector(), ElementsAre(2, 2));
}

struct Case {
  int64_t n, f_in, f_out;
  bool bias;
};

TEST(Linear, GradientCheckDouble) {
  const Case cases[] = {{1, 1, 1, true},  {3, 5, 4, true}, {5, 13, 7, false},
                        {6, 37, 3, true}, {9, 8, 2, true}, {2, 17, 11, true}};
  uint64_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "n=" << c.n << " f_in=" << c.f_in << " f_out=" << c.f_out
                                      << " bias=" << c.bias);
    auto in = testing::random_doubles(c.n * c.f_in, ++seed);
    auto weight = testing::random_doubles(c.f_out * c.f_in, ++seed);
    auto bias = testing::random_doubles(c.f_out, ++seed);
    std::vector<double> d_in, d_weight, d_bias;
    std::vector<testing::GradInput> inputs{{"in", &in, &d_in}, {"weight", &weight, &d_weight}};
    if (c.bias) inputs.push_back({"bias", &bias, &d_bias});
    testing::check_gradients(
        [&](std::vector<double>& out) {
          out.assign(c.n * c.f_out, 0.0);
          linear_forward(out.data(), in.data(), weight.data(), c.bias ? bias.data() : nullptr, c.n,
                         c.f_in, c.f_out);
        },
        [&](const std::vector<double>& d_out) {
          linear_backward(d_in.data(), d_weight.data(), c.bias ? d_bias.data() : nullptr,
                          d_out.data(), in.data(), weight.data(), c.n, c.f_in, c.f_out);
        },
        inputs);
  }
}

TEST(Linear, LayerMatchesFloatKernelAndAddsIntoGrads) {
  const int64_t n = 5, f_in = 19, f_out = 6;
  Linear layer({.in_features = f_in, .out_features = f_out});
  Rng rng(3);
  layer.init(Init::kPyTorch, rng);
  Tensor in({n, f_in}, random_floats(n * f_in, 11));
  Tensor d_out({n, f_out}, random_floats(n * f_out, 12));

  std::vector<float> want_out(n * f_out), want_d_in(n * f_in, 0), want_dw(f_out * f_in, 0),
      want_db(f_out, 0);
  linear_forward(want_out.data(), in.data(), layer.weight().value.data(), layer.bias().value.data(),
                 n, f_in, f_out);
  linear_backward(want_d_in.data(), want_dw.data(), want_db.data(), d_out.data(), in.data(),
                  layer.weight().value.data(), n, f_in, f_out);

  Tensor out({n, f_out}), d_in({n, f_in});
  layer.forward(out, in, Mode::kTrain);
  EXPECT_EQ(out.to_vector(), want_out);
  layer.backward(d_in, d_out, in, out);
  EXPECT_EQ(d_in.to_vector(), want_d_in);
  EXPECT_EQ(layer.weight().grad.to_vector(), want_dw);
  EXPECT_EQ(layer.bias().grad.to_vector(), want_db);

  layer.backward(d_in, d_out, in, out);
  EXPECT_EQ(d_in.to_vector(), want_d_in);
  for (size_t i = 0; i < want_dw.size(); ++i)
    EXPECT_NEAR(layer.weight().grad[i], 2 * want_dw[i], 1e-6) << "weight grad " << i;
  for (size_t i = 0; i < want_db.size(); ++i)
    EXPECT_FLOAT_EQ(layer.bias().grad[i], 2 * want_db[i]) << "bias grad " << i;
}

TEST(Linear, ResultsDoNotDependOnThreadCount) {
  const int64_t n = 11, f_in = 29, f_out = 9;
  auto in = random_floats(n * f_in, 21), weight = random_floats(f_out * f_in, 22),
       bias = random_floats(f_out, 23), d_out = random_floats(n * f_out, 24);
  auto run = [&](int threads) {
    set_num_threads(threads);
    std::vector<float> out(n * f_out), d_in(n * f_in), dw(f_out * f_in, 0), db(f_out, 0);
    linear_forward(out.data(), in.data(), weight.data(), bias.data(), n, f_in, f_out);
    linear_backward(d_in.data(), dw.data(), db.data(), d_out.data(), in.data(), weight.data(), n,
                    f_in, f_out);
    return std::vector<std::vector<float>>{out, d_in, dw, db};
  };
  const int saved = num_threads();
  auto one = run(1);
  for (int threads : {2, 3, 4}) EXPECT_EQ(run(threads), one) << threads << " threads";
  set_num_threads(saved);
}

// The float kernels run on gemm; the double instantiation is the plain reference. On random
// shapes (batch 1 to 4 take gemm's dot-product path, F_in > 384 several K blocks) every output
// and gradient agrees within float rounding of the sum of |terms|.
TEST(Linear, FloatPathMatchesDoubleReference) {
  const Case cases[] = {{1, 1600, 128, true}, {3, 70, 9, true},     {4, 33, 130, false},
                        {64, 288, 50, true},  {17, 1000, 21, true}, {130, 13, 7, true},
                        {64, 128, 10, true},  {5, 1, 1, false}};
  uint64_t seed = 500;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "n=" << c.n << " f_in=" << c.f_in << " f_out=" << c.f_out
                                      << " bias=" << c.bias);
    auto in = random_floats(c.n * c.f_in, ++seed), weight = random_floats(c.f_out * c.f_in, ++seed),
         bias = random_floats(c.f_out, ++seed), d_out = random_floats(c.n * c.f_out, ++seed);
    auto grad_w = random_floats(c.f_out * c.f_in, ++seed), grad_b = random_floats(c.f_out, ++seed);
    auto wide = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };

    std::vector<float> out(c.n * c.f_out), d_in(c.n * c.f_in), dw = grad_w, db = grad_b;
    linear_forward(out.data(), in.data(), weight.data(), c.bias ? bias.data() : nullptr, c.n,
                   c.f_in, c.f_out);
    linear_backward(d_in.data(), dw.data(), c.bias ? db.data() : nullptr, d_out.data(), in.data(),
                    weight.data(), c.n, c.f_in, c.f_out);

    auto in_d = wide(in), weight_d = wide(weight), bias_d = wide(bias), d_out_d = wide(d_out);
    std::vector<double> out_d(c.n * c.f_out), d_in_d(c.n * c.f_in), dw_d = wide(grad_w),
                                                                    db_d = wide(grad_b);
    linear_forward(out_d.data(), in_d.data(), weight_d.data(), c.bias ? bias_d.data() : nullptr,
                   c.n, c.f_in, c.f_out);
    linear_backward(d_in_d.data(), dw_d.data(), c.bias ? db_d.data() : nullptr, d_out_d.data(),
                    in_d.data(), weight_d.data(), c.n, c.f_in, c.f_out);

    // Inputs lie in [-1, 1]: a float sum of `terms` products errs by about sqrt(terms) roundings
    // of a value of order terms; the bound below allows a few times that.
    auto expect_close = [](const std::vector<float>& got, const std::vector<double>& want,
                           int64_t terms, const char* what) {
      ASSERT_EQ(got.size(), want.size()) << what;
      const double tol = 1e-6 + 2e-7 * static_cast<double>(terms) * std::sqrt(terms);
      for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << what << " " << i;
    };
    expect_close(out, out_d, c.f_in, "out");
    expect_close(d_in, d_in_d, c.f_out, "d_in");
    expect_close(dw, dw_d, c.n, "d_weight");
    if (c.bias) expect_close(db, db_d, c.n, "d_bias");
    EXPECT_NE(dw, grad_w);  // the weight gradient was added into
  }
}

TEST(Linear, RejectsBadOptions) {
  EXPECT_EQ(error_of([] { Linear({.in_features = 0, .out_features = 10}); }),
            "Linear: in_features must be at least 1, got 0");
  EXPECT_EQ(error_of([] { Linear({.in_features = 128, .out_features = 0}); }),
            "Linear: out_features must be at least 1, got 0");
  EXPECT_EQ(error_of([] { Linear({.in_features = 128, .out_features = -2}); }),
            "Linear: out_features must be at least 1, got -2");
  EXPECT_EQ(error_of([] { Linear(LinearOptions{}); }),
            "Linear: in_features must be at least 1, got 0");
}

TEST(Linear, RejectsBadInputShapes) {
  Linear layer({.in_features = 3136, .out_features = 128});
  EXPECT_EQ(layer.output_shape({64, 3136}), (Shape{64, 128}));
  // The classic mistake: 64 * 7 * 7 features declared after a flatten of 64 x 14 x 14.
  EXPECT_EQ(shape_error(layer, {1, 12544}),
            "Linear: expects 3136 input features, got 12544 (input shape (1, 12544))");
  std::string four_d = shape_error(layer, {1, 64, 14, 14});
  EXPECT_THAT(four_d, HasSubstr("Linear: expects a 2-D input (N, 3136)"));
  EXPECT_THAT(four_d, HasSubstr("(1, 64, 14, 14)"));
  EXPECT_THAT(four_d, HasSubstr("add a Flatten before it"));
  EXPECT_THAT(four_d, HasSubstr("12544 features"));
  EXPECT_EQ(shape_error(layer, {3136}),
            "Linear: expects a 2-D input (N, 3136), got input of shape (3136)");

  Tensor in({2, 5}), out({2, 128});
  EXPECT_EQ(error_of([&] { layer.forward(out, in, Mode::kTrain); }),
            "Linear: expects 3136 input features, got 5 (input shape (2, 5))");
  Tensor good_in({2, 3136}), bad_out({2, 127});
  EXPECT_EQ(error_of([&] { layer.forward(bad_out, good_in, Mode::kTrain); }),
            "Linear: output: expected shape (2, 128), got (2, 127)");
}

TEST(Linear, SequentialBuildNamesTheLayer) {
  Sequential model;
  model.add(Linear({.in_features = 3136, .out_features = 128}));
  EXPECT_EQ(error_of([&] { model.build({12544}); }),
            "layer 0 Linear: expects 3136 input features, got 12544 (input shape (1, 12544))");
}

TEST(Linear, ParamsDescribeFlops) {
  Linear layer({.in_features = 1600, .out_features = 128});
  auto p = layer.params();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "weight");
  EXPECT_EQ(p[0].param->value.shape(), (Shape{128, 1600}));
  EXPECT_EQ(p[0].param->grad.shape(), (Shape{128, 1600}));
  EXPECT_EQ(p[1].name, "bias");
  EXPECT_EQ(p[1].param->value.shape(), (Shape{128}));
  EXPECT_EQ(layer.describe(), "Linear(1600, 128)");
  EXPECT_EQ(layer.kind(), "Linear");
  EXPECT_EQ(layer.flops({64, 1600}), 2 * 64 * 1600 * 128 + 64 * 128);

  Linear no_bias({.in_features = 4, .out_features = 2, .bias = false});
  auto q = no_bias.params();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].name, "weight");
  EXPECT_EQ(no_bias.describe(), "Linear(4, 2, bias=false)");
  EXPECT_EQ(no_bias.flops({3, 4}), 2 * 3 * 4 * 2);
  EXPECT_THAT(error_of([&] { no_bias.flops({3, 5}); }), HasSubstr("expects 4 input features"));
}

TEST(Linear, InitUsesFans) {
  Linear layer({.in_features = 100, .out_features = 20});
  Rng rng(5);
  layer.init(Init::kPyTorch, rng);
  const float bound = 1.0f / std::sqrt(100.0f);  // 1 / sqrt(fan_in)
  float max_abs = 0;
  for (float w : layer.weight().value) {
    EXPECT_LE(std::abs(w), bound);
    max_abs = std::max(max_abs, std::abs(w));
  }
  EXPECT_GT(max_abs, 0.9f * bound);  // spread over the whole range, not zero
  bool bias_nonzero = false;
  for (float b : layer.bias().value) {
    EXPECT_LE(std::abs(b), bound);
    bias_nonzero |= b != 0;
  }
  EXPECT_TRUE(bias_nonzero);

  Linear same({.in_features = 100, .out_features = 20});
  Rng rng2(5);
  same.init(Init::kPyTorch, rng2);
  EXPECT_EQ(same.weight().value.to_vector(), layer.weight().value.to_vector());

  layer.init(Init::kGlorot, rng);
  const float glorot = std::sqrt(6.0f / (100 + 20));  // fan_out = out_features
  max_abs = 0;
  for (float w : layer.weight().value) {
    EXPECT_LE(std::abs(w), glorot);
    max_abs = std::max(max_abs, std::abs(w));
  }
  EXPECT_GT(max_abs, bound);  // the Glorot bound is wider than 1 / sqrt(fan_in) here
  for (float b : layer.bias().value) EXPECT_EQ(b, 0.0f);
}

}  // namespace
}  // namespace scratchnet
