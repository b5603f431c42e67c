#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>

#include "scratchnet/check.h"
#include "scratchnet/tensor.h"
#include "support/error.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

TEST(Tensor, ZeroFilledAndShaped) {
  Tensor t({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.ndim(), 3);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(-1), 4);
  for (float v : t) EXPECT_EQ(v, 0.0f);
}

TEST(Tensor, StorageIs64ByteAligned) {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t({n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u) << n;
  }
}

TEST(Tensor, FromValuesChecksCount) {
  Tensor t({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(t[3], 4.0f);
  EXPECT_THAT(error_of([] {
                Tensor bad({2, 2}, {1, 2, 3});
              }),
              HasSubstr("tensor of shape (2, 2) needs 4 values, got 3"));
}

TEST(Tensor, CopyIsDeep) {
  Tensor a({3}, {1, 2, 3});
  Tensor b = a;
  b[0] = 9;
  EXPECT_EQ(a[0], 1.0f);
  EXPECT_EQ(b[0], 9.0f);
  EXPECT_NE(a.data(), b.data());
}

TEST(Tensor, ScalarShapeHasOneElement) {
  Tensor s(Shape{});
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(shape_str(s.shape()), "()");
}

TEST(Tensor, ReshapeKeepsDataAndChecksSize) {
  Tensor t({2, 6}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  t.reshape({3, 4});
  EXPECT_EQ(t.shape(), (Shape{3, 4}));
  EXPECT_EQ(t[11], 11.0f);
  EXPECT_THAT(error_of([&] {
                t.reshape({5, 2});
              }),
              HasSubstr("cannot reshape (3, 4) to (5, 2): sizes differ"));
}

TEST(Tensor, ResizeReusesLargerStorage) {
  Tensor t({64, 10});
  const float* before = t.data();
  t.resize({32, 10});
  EXPECT_EQ(t.data(), before);
  EXPECT_EQ(t.numel(), 320);
  t.resize({64, 10});
  EXPECT_EQ(t.data(), before);
  t.resize({65, 10});
  EXPECT_EQ(t.numel(), 650);
}

TEST(Tensor, NegativeDimensionIsRejected) {
  EXPECT_THAT(error_of([] {
                Tensor t({2, -1});
              }),
              HasSubstr("shape (2, -1) has a negative dimension"));
}

TEST(Tensor, DimOutOfRange) {
  Tensor t({2, 3});
  EXPECT_THAT(error_of([&] { (void)t.dim(2); }),
              HasSubstr("dimension 2 is out of range for shape (2, 3)"));
}

TEST(Tensor, CheckShapeNamesWhatAndBothShapes) {
  Tensor t({4, 10});
  EXPECT_NO_THROW(check_shape(t, {4, 10}, "logits"));
  EXPECT_THAT(error_of([&] {
                check_shape(t, {4, 12}, "logits");
              }),
              HasSubstr("logits: expected shape (4, 12), got (4, 10)"));
}

TEST(Tensor, FullFills) {
  Tensor t = Tensor::full({2, 2}, 1.5f);
  for (float v : t) EXPECT_EQ(v, 1.5f);
}

}  // namespace
}  // namespace scratchnet
