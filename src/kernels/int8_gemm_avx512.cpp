// int8_gemm with AVX-512 VNNI: tiles of R rows x NV vectors of 16 columns (int8_gemm.h).
//
// Per step of 4 k: NV loads of packed w (16 columns x 4 k each), R broadcasts of 4 bytes of a
// row, R * NV vpdpbusd. 6 x 4 tiles keep 24 accumulators, 4 w vectors and a broadcast in the
// 32 registers.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "scratchnet/kernels/int8_gemm.h"

namespace scratchnet::int8_detail {

namespace {

constexpr int kRows = 6, kVectors = 4;

template <int R, int NV>
void tile(int32_t* c, int64_t ldc, const uint8_t* a, int64_t lda, const int8_t* w, int64_t kp,
          int64_t cols) {
  __m512i acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
  const int64_t panel = kp * 16;  // bytes of one 16-column panel
  for (int64_t q = 0; q < kp; q += 4) {
    __m512i wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512(w + v * panel + q * 16);
    for (int r = 0; r < R; ++r) {
      int32_t four;
      std::memcpy(&four, a + r * lda + q, 4);
      const __m512i av = _mm512_set1_epi32(four);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, wv[v]);
    }
  }
  for (int v = 0; v < NV; ++v) {
    const int64_t left = std::min<int64_t>(16, cols - v * 16);
    const __mmask16 mask = static_cast<__mmask16>((1u << left) - 1);
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_epi32(c + r * ldc + v * 16, mask, acc[r][v]);
  }
}

template <int R>
void row_block(int32_t* c, int64_t ldc, const uint8_t* a, int64_t lda, const Int8Packed& w) {
  for (int64_t j = 0; j < w.n; j += 16 * kVectors) {
    const int8_t* panels = w.data.data() + (j / 16) * w.kp * 16;
    const int64_t cols = std::min<int64_t>(16 * kVectors, w.n - j);
    switch ((cols + 15) / 16) {
      case 1:
        tile<R, 1>(c + j, ldc, a, lda, panels, w.kp, cols);
        break;
      case 2:
        tile<R, 2>(c + j, ldc, a, lda, panels, w.kp, cols);
        break;
      case 3:
        tile<R, 3>(c + j, ldc, a, lda, panels, w.kp, cols);
        break;
      default:
        tile<R, 4>(c + j, ldc, a, lda, panels, w.kp, cols);
        break;
    }
  }
}

}  // namespace

void int8_gemm_vnni(int32_t* c, int64_t ldc, const uint8_t* a, int64_t lda, int64_t m,
                    const Int8Packed& w) {
  int64_t i = 0;
  for (; i + kRows <= m; i += kRows) row_block<kRows>(c + i * ldc, ldc, a + i * lda, lda, w);
  switch (m - i) {
    case 1:
      row_block<1>(c + i * ldc, ldc, a + i * lda, lda, w);
      break;
    case 2:
      row_block<2>(c + i * ldc, ldc, a + i * lda, lda, w);
      break;
    case 3:
      row_block<3>(c + i * ldc, ldc, a + i * lda, lda, w);
      break;
    case 4:
      row_block<4>(c + i * ldc, ldc, a + i * lda, lda, w);
      break;
    case 5:
      row_block<5>(c + i * ldc, ldc, a + i * lda, lda, w);
      break;
    default:
      break;
  }
}

void quantize_u8_avx512(uint8_t* q, const float* x, int64_t n, float inv_scale, float zero_point) {
  const __m512 inv = _mm512_set1_ps(inv_scale), z = _mm512_set1_ps(zero_point);
  const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = n - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x + i), inv, z);
    // maskz forms: the plain ones trip a false maybe-uninitialized warning in GCC 12.
    v = _mm512_maskz_min_ps(mask, _mm512_maskz_max_ps(mask, v, lo), hi);  // max(NaN, 0) is 0
    const __m512i r = _mm512_maskz_cvtps_epi32(mask, v);                  // half to even
    _mm512_mask_cvtusepi32_storeu_epi8(q + i, mask, r);
  }
}

}  // namespace scratchnet::int8_detail

#endif
