#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {
namespace {

class Parallel : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    saved_ = num_threads();
    set_num_threads(GetParam());
  }
  void TearDown() override { set_num_threads(saved_); }
  int saved_ = 1;
};

TEST_P(Parallel, CoversEveryIndexExactlyOnce) {
  for (int64_t n : {1, 2, 3, 7, 64, 1001}) {
    std::vector<std::atomic<int>> hits(n);
    parallel_for(n, [&](int64_t begin, int64_t end) {
      ASSERT_LT(begin, end);
      for (int64_t i = begin; i < end; ++i) hits[i]++;
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST_P(Parallel, ZeroItemsCallsNothing) {
  bool called = false;
  parallel_for(0, [&](int64_t, int64_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST_P(Parallel, ExceptionReachesTheCaller) {
  EXPECT_THROW(parallel_for(100,
                            [](int64_t begin, int64_t) {
                              if (begin > 0 || num_threads() == 1) throw std::runtime_error("x");
                            }),
               std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int64_t> sum{0};
  parallel_for(10, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 45);
}

TEST_P(Parallel, NestedCallsRunInline) {
  std::atomic<int> inner{0};
  parallel_for(4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      parallel_for(3, [&](int64_t bb, int64_t ee) { inner += static_cast<int>(ee - bb); });
  });
  EXPECT_EQ(inner.load(), 12);
}

TEST_P(Parallel, ChunksHoldAtLeastTheGrain) {
  for (int64_t n : {1, 99, 100, 199, 200, 1001}) {
    std::atomic<int64_t> covered{0}, chunks{0};
    parallel_for(n, 100, [&](int64_t begin, int64_t end) {
      if (n >= 100) {
        EXPECT_GE(end - begin, 100) << "n=" << n;
      }
      covered += end - begin;
      ++chunks;
    });
    EXPECT_EQ(covered.load(), n);
    EXPECT_LE(chunks.load(), std::max<int64_t>(1, std::min<int64_t>(GetParam(), n / 100)));
  }
}

TEST_P(Parallel, ManyQuickCallsInARow) {  // the spinning hand-over, back to back
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 2000; ++rep) parallel_for(8, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 8 * 2000);
}

TEST(ParallelGrain, ChunksOfAboutThirtyTwoThousandFloats) {
  EXPECT_EQ(parallel_grain(1), 32768);
  EXPECT_EQ(parallel_grain(784), 41);
  EXPECT_EQ(parallel_grain(100000), 1);
  EXPECT_EQ(parallel_grain(0), 32768);
}

INSTANTIATE_TEST_SUITE_P(Threads, Parallel, ::testing::Values(1, 2, 3, 8));

TEST(ParallelOptions, ThreadCountMustBePositive) {
  try {
    set_num_threads(0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("thread count must be at least 1, got 0"));
  }
}

}  // namespace
}  // namespace scratchnet
