// The int8 matrix multiply and input quantisation: every instruction set against plain
// integer loops (the results must be identical, not close).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "scratchnet/kernels/gemm.h"
#include "scratchnet/kernels/int8_gemm.h"
#include "scratchnet/rng.h"
#include "support/error.h"

namespace scratchnet {
namespace {

using testing::error_of;

// Runs fn once per instruction set this CPU has ("avx512" brings VNNI when the CPU has it).
template <typename Fn>
void for_each_isa(Fn fn) {
  const std::string saved = gemm_isa();
  for (const char* isa : {"generic", "avx512"}) {
    if (!gemm_isa_supported(isa)) continue;
    set_gemm_isa(isa);
    SCOPED_TRACE(int8_gemm_isa());
    fn();
  }
  set_gemm_isa(saved.c_str());
}

TEST(Int8Gemm, MatchesIntegerLoopsOnManyShapes) {
  Rng rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t m = 1 + rng.below(20), n = 1 + rng.below(80), k = 1 + rng.below(300);
    SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n << " k=" << k);
    std::vector<int8_t> w(n * k);
    for (auto& v : w) v = static_cast<int8_t>(static_cast<int>(rng.below(256)) - 128);
    const Int8Packed packed = pack_int8(w.data(), n, k);
    ASSERT_EQ(packed.kp % 4, 0);
    const int64_t lda = packed.kp + 3;  // a row stride longer than the row
    std::vector<uint8_t> a(m * lda);
    for (auto& v : a) v = static_cast<uint8_t>(rng.below(256));
    std::vector<int32_t> want(m * n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        int32_t s = 0;
        for (int64_t q = 0; q < k; ++q) s += int32_t{a[i * lda + q]} * w[j * k + q];
        want[i * n + j] = s;
      }
    for (int64_t j = 0; j < n; ++j) {
      int32_t s = 0;
      for (int64_t q = 0; q < k; ++q) s += w[j * k + q];
      ASSERT_EQ(packed.row_sums[j], s);
    }
    for_each_isa([&] {
      const int64_t ldc = n + 2;
      std::vector<int32_t> c(m * ldc, -7);
      int8_gemm(c.data(), ldc, a.data(), lda, m, packed);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) ASSERT_EQ(c[i * ldc + j], want[i * n + j]) << i << "," << j;
        for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], -7) << "wrote past N";
      }
    });
  }
}

TEST(Int8Gemm, ExtremeValuesStayExact) {
  const int64_t n = 17, k = 4099;  // 255 * -128 * 4099 is near -1.34e8, no overflow
  std::vector<int8_t> w(n * k, -128);
  std::vector<uint8_t> a(2 * ((k + 3) / 4 * 4), 255);
  const Int8Packed packed = pack_int8(w.data(), n, k);
  for_each_isa([&] {
    std::vector<int32_t> c(2 * n);
    int8_gemm(c.data(), n, a.data(), packed.kp, 2, packed);
    for (int32_t v : c) ASSERT_EQ(v, 255 * -128 * k);
  });
}

TEST(Int8Gemm, RejectsBadArguments) {
  std::vector<int8_t> w(2 * 5);
  const Int8Packed packed = pack_int8(w.data(), 2, 5);
  std::vector<uint8_t> a(8);
  std::vector<int32_t> c(2);
  EXPECT_EQ(error_of([&] { int8_gemm(c.data(), 2, a.data(), 5, 1, packed); }),
            "int8_gemm: needs M >= 0, lda >= 8 and ldc >= 2, got 1, 5, 2");
  EXPECT_EQ(error_of([&] { pack_int8(w.data(), 1, 70000); }),
            "pack_int8: needs N >= 0 and 0 <= K < 65536, got 1, 70000");
}

TEST(QuantizeU8, RoundsHalfToEvenClampsAndMapsNaNToZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // With scale 1 and zero point 10: x + 10, rounded half to even, clamped to [0, 255].
  const std::vector<float> x = {0.5f,  1.5f, 2.5f, -0.5f, -10.4f, -10.6f, -1e30f, 244.5f, 245.5f,
                                1e30f, nan,  inf,  -inf,  3.49f,  3.51f,  0.0f,   100.25f};
  const std::vector<uint8_t> want = {10,  12, 12,  10, 0,  0,  0,  254, 255,
                                     255, 0,  255, 0,  13, 14, 10, 110};
  for_each_isa([&] {
    std::vector<uint8_t> q(x.size(), 77);
    quantize_u8(q.data(), x.data(), static_cast<int64_t>(x.size()), 1.0f, 10.0f);
    EXPECT_EQ(q, want);
  });
}

TEST(QuantizeU8, EveryInstructionSetGivesTheSameBytes) {
  Rng rng(3);
  std::vector<float> x(1001);
  for (auto& v : x) v = (static_cast<float>(rng.below(1 << 20)) / (1 << 20) - 0.3f) * 9.0f;
  std::vector<std::vector<uint8_t>> results;
  for_each_isa([&] {
    std::vector<uint8_t> q(x.size());
    quantize_u8(q.data(), x.data(), static_cast<int64_t>(x.size()), 1 / 0.031f, 87.0f);
    results.push_back(q);
  });
  for (size_t i = 0; i < x.size(); ++i) {  // the formula, checked element by element
    const float v = std::fma(x[i], 1 / 0.031f, 87.0f);
    ASSERT_EQ(results[0][i], std::nearbyint(std::min(std::max(0.0f, v), 255.0f))) << i;
  }
  for (const auto& r : results) EXPECT_EQ(r, results[0]);
}

}  // namespace
}  // namespace scratchnet
