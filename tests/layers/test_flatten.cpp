// Tests for Flatten.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/layers/flatten.h"
#include "scratchnet/model.h"
#include "support/error.h"
#include "support/gradcheck.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

Tensor iota_tensor(const Shape& shape) {
  Tensor t(shape);
  std::iota(t.begin(), t.end(), 0.0f);
  return t;
}

TEST(Flatten, OutputShape) {
  Flatten flatten;
  EXPECT_EQ(flatten.output_shape({2, 3, 4, 5}), (Shape{2, 60}));
  EXPECT_EQ(flatten.output_shape({64, 64, 5, 5}), (Shape{64, 1600}));
  EXPECT_EQ(flatten.output_shape({7, 3}), (Shape{7, 3}));
  EXPECT_EQ(flatten.output_shape({4, 1, 1, 1}), (Shape{4, 1}));
  EXPECT_EQ(flatten.output_shape({2, 0, 3}), (Shape{2, 0}));
}

TEST(Flatten, RejectsFewerThanTwoDimensions) {
  Flatten flatten;
  EXPECT_EQ(error_of([&] { flatten.output_shape({5}); }),
            "Flatten: expects at least 2 dimensions (N, ...), got input of shape (5)");
  EXPECT_EQ(error_of([&] { flatten.output_shape({}); }),
            "Flatten: expects at least 2 dimensions (N, ...), got input of shape ()");
  Tensor in({6}), out;
  EXPECT_THAT(error_of([&] { flatten.forward(out, in, Mode::kTrain); }),
              HasSubstr("Flatten: expects at least 2 dimensions"));
}

TEST(Flatten, ForwardAndBackwardByHand) {
  Flatten flatten;
  // in (2, 2, 3) holds 0..11; in[n, c, w] = 6n + 3c + w lands at out[n, 3c + w].
  Tensor in = iota_tensor({2, 2, 3}), out;
  flatten.forward(out, in, Mode::kTrain);
  ASSERT_EQ(out.shape(), (Shape{2, 6}));
  EXPECT_EQ(out[1 * 6 + 3 * 1 + 2], 11.0f);  // in[1, 1, 2]
  EXPECT_EQ(out[0 * 6 + 3 * 1 + 0], 3.0f);   // in[0, 1, 0]
  EXPECT_EQ(out.to_vector(), in.to_vector());

  Tensor d_out({2, 6}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  Tensor d_in = Tensor::full({2, 2, 3}, -9.0f);  // stale values that backward must overwrite
  flatten.backward(d_in, d_out, in, out);
  ASSERT_EQ(d_in.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(d_in.to_vector(), d_out.to_vector());

  Tensor fresh;  // backward sizes an empty gradient buffer itself
  flatten.backward(fresh, d_out, in, out);
  EXPECT_EQ(fresh.shape(), (Shape{2, 2, 3}));
}

TEST(Flatten, GradientMatchesFiniteDifferences) {
  for (const Shape& shape : {Shape{1, 1}, Shape{2, 3, 5}, Shape{3, 2, 3, 5}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t n = shape_numel(shape);
    std::vector<double> x = testing::random_doubles(static_cast<size_t>(n), 5 + n), d_x;
    testing::check_gradients(
        [&](std::vector<double>& out) {
          out.resize(x.size());
          flatten_forward(out.data(), x.data(), n);
        },
        [&](const std::vector<double>& d_out) { flatten_backward(d_x.data(), d_out.data(), n); },
        {{"in", &x, &d_x}});
  }
}

TEST(Flatten, LayerMatchesFloatKernels) {
  Flatten flatten;
  Tensor in({3, 4, 5, 7}), out;
  Rng rng(3);
  for (float& v : in) v = rng.uniform(-1.0f, 1.0f);
  flatten.forward(out, in, Mode::kEval);
  std::vector<float> want(in.numel());
  flatten_forward(want.data(), in.data(), in.numel());
  EXPECT_EQ(out.shape(), (Shape{3, 140}));
  EXPECT_EQ(out.to_vector(), want);

  Tensor d_out = out, d_in;
  for (float& v : d_out) v = rng.uniform(-1.0f, 1.0f);
  flatten.backward(d_in, d_out, in, out);
  std::vector<float> want_d_in(in.numel());
  flatten_backward(want_d_in.data(), d_out.data(), in.numel());
  EXPECT_EQ(d_in.shape(), in.shape());
  EXPECT_EQ(d_in.to_vector(), want_d_in);
}

TEST(Flatten, RejectsGradientOfTheWrongShape) {
  Flatten flatten;
  Tensor in = iota_tensor({2, 2, 3}), out, d_in, d_out({2, 5});
  flatten.forward(out, in, Mode::kTrain);
  EXPECT_EQ(error_of([&] { flatten.backward(d_in, d_out, in, out); }),
            "Flatten: gradient of the output: expected shape (2, 6), got (2, 5)");
}

TEST(Flatten, DescribeKindFlopsAndParameters) {
  Flatten flatten;
  EXPECT_EQ(flatten.kind(), "Flatten");
  EXPECT_EQ(flatten.describe(), "Flatten");
  EXPECT_EQ(flatten.flops({2, 64, 5, 5}), 0);
  EXPECT_TRUE(flatten.params().empty());
  EXPECT_TRUE(flatten.buffers().empty());
  EXPECT_TRUE(flatten.reshapes(Mode::kTrain));
  EXPECT_TRUE(flatten.reshapes(Mode::kEval));
}

TEST(Flatten, InfersItsShapeInsideASequential) {
  Sequential model;
  model.add(Flatten());
  model.build({64, 5, 5});
  EXPECT_EQ(model.output_shape(0), (Shape{1600}));

  Sequential flat;
  flat.add(Flatten());
  EXPECT_EQ(error_of([&] { flat.build({}); }),
            "layer 0 Flatten: expects at least 2 dimensions (N, ...), got input of shape (1)");
}

}  // namespace
}  // namespace scratchnet
