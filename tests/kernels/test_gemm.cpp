#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "scratchnet/kernels/gemm.h"
#include "scratchnet/parallel.h"
#include "scratchnet/rng.h"
#include "support/error.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

// One product with its own storage. a, b and c are sized exactly (rows - 1) * ld + row length
// so reads past the end show up under AddressSanitizer; c's padding columns hold a sentinel.
struct Problem {
  GemmArgs g;
  std::vector<float> a, b, c;
  std::vector<float> c0;  // c before the call
};

constexpr float kSentinel = -12345.0f;

Problem make_problem(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, int64_t pad,
                     float beta, uint64_t seed, bool nan_c = false) {
  Problem p;
  p.g = {.trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k, .beta = beta};
  const int64_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
  const int64_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  p.g.lda = a_cols + pad;
  p.g.ldb = b_cols + pad;
  p.g.ldc = n + pad;
  auto sized = [](int64_t rows, int64_t cols, int64_t ld) {
    return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
  };
  Rng rng(seed);
  p.a.resize(sized(a_rows, a_cols, p.g.lda));
  p.b.resize(sized(b_rows, b_cols, p.g.ldb));
  p.c.assign(sized(m, n, p.g.ldc), kSentinel);
  for (float& x : p.a) x = rng.uniform(-1.0f, 1.0f);
  for (float& x : p.b) x = rng.uniform(-1.0f, 1.0f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      p.c[i * p.g.ldc + j] =
          nan_c ? std::numeric_limits<float>::quiet_NaN() : rng.uniform(-1.0f, 1.0f);
  p.c0 = p.c;
  p.g.a = p.a.empty() ? nullptr : p.a.data();
  p.g.b = p.b.empty() ? nullptr : p.b.data();
  p.g.c = p.c.empty() ? nullptr : p.c.data();
  return p;
}

std::string describe(const GemmArgs& g) {
  return ::testing::PrintToString(g.m) + "x" + ::testing::PrintToString(g.n) + "x" +
         ::testing::PrintToString(g.k) + (g.trans_a ? " ta" : "") + (g.trans_b ? " tb" : "") +
         " lda=" + ::testing::PrintToString(g.lda) + " ldb=" + ::testing::PrintToString(g.ldb) +
         " ldc=" + ::testing::PrintToString(g.ldc) + " beta=" + ::testing::PrintToString(g.beta);
}

// Compares c with a double-precision triple loop. Allowed error: (K + 4) float roundings of
// sum |a| |b| + |beta c| (a sequential float sum errs by at most about K units of that).
void expect_matches_reference(const Problem& p) {
  const GemmArgs& g = p.g;
  int bad = 0;
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0, bound = 0;
      for (int64_t q = 0; q < g.k; ++q) {
        const double av = g.trans_a ? p.a[q * g.lda + i] : p.a[i * g.lda + q];
        const double bv = g.trans_b ? p.b[j * g.ldb + q] : p.b[q * g.ldb + j];
        sum += av * bv;
        bound += std::abs(av * bv);
      }
      if (g.beta != 0) {
        const double old = p.c0[i * g.ldc + j];
        sum += g.beta * old;
        bound += std::abs(g.beta * old);
      }
      const double tol = (g.k + 4) * 1.2e-7 * bound + 1e-30;
      const float got = p.c[i * g.ldc + j];
      if (!(std::abs(got - sum) <= tol) && ++bad <= 5)
        ADD_FAILURE() << describe(g) << ": c[" << i << "," << j << "] = " << got << ", want " << sum
                      << " +- " << tol;
    }
    for (int64_t j = g.n; j < g.ldc && i + 1 < g.m; ++j)
      if (p.c[i * g.ldc + j] != kSentinel && ++bad <= 5)
        ADD_FAILURE() << describe(g) << ": padding c[" << i << "," << j << "] was written";
  }
}

// Runs the body for every instruction set the CPU supports, restoring the one in use.
class GemmIsa : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    saved_ = gemm_isa();
    if (!gemm_isa_supported(GetParam())) GTEST_SKIP() << GetParam() << " not supported here";
    set_gemm_isa(GetParam());
  }
  void TearDown() override { set_gemm_isa(saved_.c_str()); }

 private:
  std::string saved_;
};

TEST_P(GemmIsa, ReportsTheForcedSet) { EXPECT_STREQ(gemm_isa(), GetParam()); }

TEST_P(GemmIsa, MatchesReferenceOnEdgeSizes) {
  // Sizes around the tile edges of every set (4, 6, 8 rows; 8, 16, 48 columns).
  const int64_t sizes[] = {1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 33, 47, 48, 49, 97};
  uint64_t seed = 1;
  for (int64_t m : sizes)
    for (int64_t n : sizes) {
      const int64_t k = sizes[(m * 7 + n) % 15];
      const bool ta = (m + n) % 2 == 1, tb = (m / 2 + n) % 2 == 1;
      Problem p = make_problem(m, n, k, ta, tb, (m + n) % 3, 0.0f, ++seed);
      gemm(p.g);
      expect_matches_reference(p);
    }
}

TEST_P(GemmIsa, MatchesReferenceOnRandomShapes) {
  Rng rng(42);
  const float betas[] = {0.0f, 1.0f, 0.5f};
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t m = 1 + rng.below(trial % 3 == 0 ? 5 : 70);
    const int64_t n = 1 + rng.below(trial % 5 == 0 ? 3 : 130);
    const int64_t k = 1 + rng.below(trial % 4 == 0 ? 900 : 60);
    const bool ta = trial % 2 == 1, tb = trial / 2 % 2 == 1;
    Problem p = make_problem(m, n, k, ta, tb, rng.below(5), betas[trial % 3], 1000 + trial);
    (trial % 2 == 0 ? gemm : gemm_parallel)(p.g);
    expect_matches_reference(p);
  }
}

TEST_P(GemmIsa, SeveralKBlocksAndAllBetas) {
  // K above every set's K block, so c is accumulated over several blocks.
  uint64_t seed = 7;
  for (float beta : {0.0f, 1.0f, 0.5f, -2.0f})
    for (int t = 0; t < 4; ++t) {
      Problem p = make_problem(19, 53, 1000 + t * 300, t % 2 == 1, t / 2 == 1, 3, beta, ++seed);
      gemm(p.g);
      expect_matches_reference(p);
    }
}

// A last panel of at most 8 columns runs for all rows at once (AVX-512's column kernel): each
// element gets the bits the tiles give it when the same B has more columns, for both layouts
// of A, each kind of beta, row counts around 16 and 64, one to eight such columns, after a
// whole panel and alone.
TEST_P(GemmIsa, NarrowLastPanelsGiveTheTilesBits) {
  uint64_t seed = 90;
  for (const int64_t m : {16, 37, 70})
    for (const int64_t n : {49, 50, 53, 56, 5})
      for (const bool ta : {false, true}) {
        const float beta = m == 16 ? 1.0f : m == 37 ? 0.0f : 0.5f;
        Problem wide = make_problem(m, n < 48 ? 40 : 88, 30, ta, false, 1, beta, ++seed);
        Problem narrow = wide;
        narrow.g.a = narrow.a.data();
        narrow.g.b = narrow.b.data();
        narrow.g.c = narrow.c.data();
        narrow.g.n = n;
        gemm(wide.g);
        gemm(narrow.g);
        expect_matches_reference(wide);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < wide.g.n; ++j)  // columns from n on untouched
            ASSERT_EQ(narrow.c[i * wide.g.ldc + j],
                      j < n ? wide.c[i * wide.g.ldc + j] : narrow.c0[i * wide.g.ldc + j])
                << describe(narrow.g) << " at " << i << ", " << j;
      }
}

TEST_P(GemmIsa, BetaZeroDoesNotPropagateNaN) {
  uint64_t seed = 70;
  for (int t = 0; t < 4; ++t)
    for (int64_t m : {1, 4, 9, 21}) {
      Problem p = make_problem(m, 37, 500, t % 2 == 1, t / 2 == 1, 1, 0.0f, ++seed, true);
      gemm_parallel(p.g);
      expect_matches_reference(p);
    }
}

TEST_P(GemmIsa, ZeroSizes) {
  // K = 0: c = beta * c; beta = 0 clears NaNs.
  Problem p = make_problem(3, 5, 0, false, true, 2, 0.5f, 5);
  gemm(p.g);
  expect_matches_reference(p);
  Problem z = make_problem(4, 6, 0, true, false, 0, 0.0f, 6, true);
  gemm_parallel(z.g);
  for (float x : z.c) EXPECT_EQ(x, 0.0f);
  // M = 0 or N = 0: nothing is touched, null pointers are fine.
  gemm({.m = 0, .n = 5, .k = 3});
  gemm_parallel({.m = 4, .n = 0, .k = 3});
}

TEST_P(GemmIsa, BitIdenticalForAnyThreadCount) {
  struct Shape {
    int64_t m, n, k;
    bool ta, tb;
  };
  // Conv- and Linear-like shapes split over rows, b packed or read in place and split over
  // columns, the dot path (m <= 8 with trans_b; `basic`'s Linear for one image split for the
  // size of its b alone), and several K blocks.
  const Shape shapes[] = {{64, 121, 288, false, false}, {32, 676, 9, false, false},
                          {1000, 40, 160, false, true}, {16, 700, 300, false, true},
                          {8, 300, 500, false, false},  {4, 600, 500, false, true},
                          {1, 3000, 700, false, true},  {1, 128, 1600, false, true},
                          {130, 50, 1600, true, false}, {77, 129, 450, true, true}};
  const int saved = num_threads();
  uint64_t seed = 300;
  for (const Shape& s : shapes) {
    Problem p = make_problem(s.m, s.n, s.k, s.ta, s.tb, 1, 0.5f, ++seed);
    set_num_threads(1);
    gemm(p.g);
    const std::vector<float> want = p.c;
    expect_matches_reference(p);
    for (int threads : {1, 2, 3, 4}) {
      set_num_threads(threads);
      p.c = p.c0;
      gemm_parallel(p.g);
      EXPECT_EQ(p.c, want) << describe(p.g) << " with " << threads << " threads";
    }
  }
  set_num_threads(saved);
}

std::string isa_name(const ::testing::TestParamInfo<const char*>& param) { return param.param; }

INSTANTIATE_TEST_SUITE_P(Isa, GemmIsa, ::testing::Values("avx512", "avx2", "generic"), isa_name);

TEST(Gemm, SelectsASupportedSet) {
  const std::string isa = gemm_isa();
  EXPECT_TRUE(isa == "avx512" || isa == "avx2" || isa == "generic") << isa;
  EXPECT_TRUE(gemm_isa_supported(isa.c_str()));
  EXPECT_TRUE(gemm_isa_supported("generic"));
  EXPECT_FALSE(gemm_isa_supported("sse9"));
}

TEST(Gemm, RejectsUnknownSet) {
  const std::string saved = gemm_isa();
  EXPECT_EQ(error_of([] { set_gemm_isa("avx1024"); }),
            "set_gemm_isa: unknown instruction set 'avx1024'; expected avx512, avx2 or generic");
  EXPECT_EQ(gemm_isa(), saved);
  for (const char* name : {"avx512", "avx2"}) {
    if (!gemm_isa_supported(name)) {
      EXPECT_THAT(error_of([&] { set_gemm_isa(name); }), HasSubstr("this CPU does not support"));
    }
  }
}

TEST(Gemm, RejectsBadArguments) {
  std::vector<float> a(12), b(12), c(12);
  GemmArgs g{.m = 3,
             .n = 4,
             .k = 3,
             .a = a.data(),
             .lda = 3,
             .b = b.data(),
             .ldb = 4,
             .c = c.data(),
             .ldc = 4};
  gemm(g);  // valid
  GemmArgs bad = g;
  bad.lda = 2;
  EXPECT_EQ(error_of([&] { gemm(bad); }), "gemm: lda 2 is less than the row length 3 of a");
  bad = g;
  bad.trans_b = true;  // b is then (4, 3): rows of length 3 = k, ldb 4 is fine
  gemm(bad);
  bad.ldb = 2;
  EXPECT_EQ(error_of([&] { gemm_parallel(bad); }),
            "gemm: ldb 2 is less than the row length 3 of b");
  bad = g;
  bad.ldc = 3;
  EXPECT_EQ(error_of([&] { gemm(bad); }), "gemm: ldc 3 is less than the row length 4 of c");
  bad = g;
  bad.k = -1;
  EXPECT_EQ(error_of([&] { gemm(bad); }), "gemm: sizes must not be negative, got m=3 n=4 k=-1");
  bad = g;
  bad.b = nullptr;
  EXPECT_EQ(error_of([&] { gemm(bad); }), "gemm: a or b is null for m=3 n=4 k=3");
}

}  // namespace
}  // namespace scratchnet
