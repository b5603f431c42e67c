// int8_gemm: packing, the portable kernel and the choice of instruction set (int8_gemm.h).
#include "scratchnet/kernels/int8_gemm.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "scratchnet/check.h"
#include "scratchnet/kernels/gemm.h"

namespace scratchnet {

namespace int8_detail {
// int8_gemm_avx512.cpp, built for AVX-512 VNNI; called only when the CPU has it.
void int8_gemm_vnni(int32_t* c, int64_t ldc, const uint8_t* a, int64_t lda, int64_t m,
                    const Int8Packed& w);
void quantize_u8_avx512(uint8_t* q, const float* x, int64_t n, float inv_scale, float zero_point);
}  // namespace int8_detail

namespace {

bool cpu_has_vnni() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

bool use_vnni() {
  static const bool has = cpu_has_vnni();
  return has && std::string(gemm_isa()) == "avx512";
}

void int8_gemm_generic(int32_t* c, int64_t ldc, const uint8_t* a, int64_t lda, int64_t m,
                       const Int8Packed& w) {
  for (int64_t i = 0; i < m; ++i) {
    const uint8_t* row = a + i * lda;
    for (int64_t j = 0; j < w.n; ++j) {
      const int8_t* panel = w.data.data() + (j / 16) * w.kp * 16 + (j % 16) * 4;
      int32_t sum = 0;
      for (int64_t k = 0; k < w.k; ++k) sum += int32_t{row[k]} * panel[(k / 4) * 64 + k % 4];
      c[i * ldc + j] = sum;
    }
  }
}

}  // namespace

Int8Packed pack_int8(const int8_t* w, int64_t n, int64_t k) {
  SN_CHECK(n >= 0 && k >= 0 && k < 65536, "pack_int8: needs N >= 0 and 0 <= K < 65536, got {}, {}",
           n, k);
  Int8Packed p{.n = n, .k = k, .kp = (k + 3) / 4 * 4};
  p.data.assign(static_cast<size_t>((n + 15) / 16 * 16 * p.kp), 0);
  p.row_sums.assign(static_cast<size_t>(n), 0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t q = 0; q < k; ++q) {
      p.data[((j / 16) * p.kp / 4 + q / 4) * 64 + (j % 16) * 4 + q % 4] = w[j * k + q];
      p.row_sums[j] += w[j * k + q];
    }
  return p;
}

void int8_gemm(int32_t* c, int64_t ldc, const uint8_t* a, int64_t lda, int64_t m,
               const Int8Packed& w) {
  SN_CHECK(m >= 0 && lda >= w.kp && ldc >= w.n,
           "int8_gemm: needs M >= 0, lda >= {} and ldc >= {}, got {}, {}, {}", w.kp, w.n, m, lda,
           ldc);
  if (m == 0 || w.n == 0) return;
#if defined(__x86_64__) || defined(_M_X64)
  if (use_vnni()) return int8_detail::int8_gemm_vnni(c, ldc, a, lda, m, w);
#endif
  int8_gemm_generic(c, ldc, a, lda, m, w);
}

void quantize_u8(uint8_t* q, const float* x, int64_t n, float inv_scale, float zero_point) {
#if defined(__x86_64__) || defined(_M_X64)
  if (use_vnni()) return int8_detail::quantize_u8_avx512(q, x, n, inv_scale, zero_point);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::fma(x[i], inv_scale, zero_point);
    q[i] = static_cast<uint8_t>(std::nearbyint(std::min(std::max(0.0f, v), 255.0f)));
  }
}

const char* int8_gemm_isa() { return use_vnni() ? "avx512vnni" : "generic"; }

}  // namespace scratchnet
