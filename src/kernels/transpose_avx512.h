// transpose_avx512.h — the 16 x 16 in-register transpose of floats, the shuffles it is made
// of, a vector's lanes summed in a fixed order, rows of up to 16 sources turned into vectors
// of 16 lanes and back, and asking for a plane's next lines (private to src/, x86-64 only).
// Callable from files built for AVX-512 and from functions with target("avx512f").
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace scratchnet::simd {

// Asks for the cache lines of the `count` values from p on (to be read; with kWrite, written).
template <bool kWrite = false, typename T>
inline void prefetch_lines(const T* p, int64_t count) {
  for (int64_t i = 0; i < count; i += 64 / static_cast<int64_t>(sizeof(T)))
    __builtin_prefetch(p + i, kWrite ? 1 : 0, 3);
}

// Asks for the cache lines of floats [at, at + count) of a plane of `size` floats, those past
// its end from `next` (the plane the caller does next, of the same size; null for none): for
// passes over planes from memory, a few rows ahead, where `perf annotate` found the loads (or,
// with kWrite, the stores) waiting while the hardware prefetchers fell behind.
template <bool kWrite = false>
inline void prefetch_ahead(const float* plane, const float* next, int64_t at, int64_t count,
                           int64_t size) {
  for (int64_t i = at; i < at + count; i += 16) {
    const float* p = i < size ? plane + i : next && i < 2 * size ? next + (i - size) : nullptr;
    if (p) __builtin_prefetch(p, kWrite ? 1 : 0, 3);
  }
}

// Lanes [0, count) set, all of them for count >= 16.
inline __mmask16 lanes_mask(int64_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1u);
}

// Shuffles spelled with an all-lanes zero mask: the same instructions, without the
// uninitialised placeholder that GCC 12's plain forms warn about.
__attribute__((target("avx512f"))) inline __m512 unpacklo(__m512 x, __m512 y) {
  return _mm512_maskz_unpacklo_ps(0xFFFF, x, y);
}
__attribute__((target("avx512f"))) inline __m512 unpackhi(__m512 x, __m512 y) {
  return _mm512_maskz_unpackhi_ps(0xFFFF, x, y);
}
__attribute__((target("avx512f"))) inline __m512 unpacklo2(__m512 x, __m512 y) {  // 64-bit pairs
  return _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, _mm512_castps_pd(x), _mm512_castps_pd(y)));
}
__attribute__((target("avx512f"))) inline __m512 unpackhi2(__m512 x, __m512 y) {
  return _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, _mm512_castps_pd(x), _mm512_castps_pd(y)));
}
template <int kImm>
__attribute__((target("avx512f"))) inline __m512 shuffle128(__m512 x, __m512 y) {
  return _mm512_maskz_shuffle_f32x4(0xFFFF, x, y, kImm);
}

template <int kImm>
__attribute__((target("avx512f"))) inline __m512 permute(__m512 x) {  // within 128-bit lanes
  return _mm512_maskz_permute_ps(0xFFFF, x, kImm);
}

// The sum of the 16 lanes of v in a fixed tree: halves, quarters, pairs of pairs, pairs.
__attribute__((target("avx512f"))) inline float sum_lanes(__m512 v) {
  v = _mm512_add_ps(v, shuffle128<0x4E>(v, v));
  v = _mm512_add_ps(v, shuffle128<0xB1>(v, v));
  v = _mm512_add_ps(v, permute<0x4E>(v));
  v = _mm512_add_ps(v, permute<0xB1>(v));
  return _mm512_cvtss_f32(v);
}

// r[i] lane j becomes r[j] lane i.
__attribute__((target("avx512f"))) inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = unpacklo(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = unpackhi(r[2 * i], r[2 * i + 1]);
  }
  __m512 u[16];  // u[4 g + k], 128-bit lane l: column 4 l + k of rows 4 g .. 4 g + 3
  for (int g = 0; g < 4; ++g) {
    u[4 * g] = unpacklo2(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = unpackhi2(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = unpacklo2(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = unpackhi2(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int k = 0; k < 4; ++k) {  // 4 x 4 transpose of 128-bit lanes across u[k], u[4 + k], ...
    const __m512 x01l = shuffle128<0x44>(u[k], u[4 + k]);
    const __m512 x01h = shuffle128<0xEE>(u[k], u[4 + k]);
    const __m512 x23l = shuffle128<0x44>(u[8 + k], u[12 + k]);
    const __m512 x23h = shuffle128<0xEE>(u[8 + k], u[12 + k]);
    r[k] = shuffle128<0x88>(x01l, x23l);
    r[4 + k] = shuffle128<0xDD>(x01l, x23l);
    r[8 + k] = shuffle128<0x88>(x01h, x23h);
    r[12 + k] = shuffle128<0xDD>(x01h, x23h);
  }
}

// For y < rows and x < cols, the vector at dst + (y * ld + x) * step gets in lane k the value
// src[k * stride + y * src_ld + x] of source k < count, 0 in the others: rows of up to 16
// samples (or channels) read 16 columns at a time, transposed.
__attribute__((target("avx512f"))) inline void rows_to_lanes(float* dst, int64_t ld, int64_t step,
                                                             const float* src, int64_t src_ld,
                                                             int64_t stride, int64_t count,
                                                             int64_t rows, int64_t cols) {
  for (int64_t y = 0; y < rows; ++y)
    for (int64_t x0 = 0; x0 < cols; x0 += 16) {
      const int64_t width = std::min<int64_t>(16, cols - x0);
      __m512 r[16];
      for (int64_t k = 0; k < 16; ++k)
        r[k] = k < count
                   ? _mm512_maskz_loadu_ps(lanes_mask(width), src + k * stride + y * src_ld + x0)
                   : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t x = 0; x < width; ++x) _mm512_storeu_ps(dst + (y * ld + x0 + x) * step, r[x]);
    }
}

// rows_to_lanes backwards: dst[k * stride + y * dst_ld + x] = lane k of the vector at
// src + (y * ld + x) * step, for k < count, y < rows, x < cols.
__attribute__((target("avx512f"))) inline void lanes_to_rows(float* dst, int64_t dst_ld,
                                                             int64_t stride, const float* src,
                                                             int64_t ld, int64_t step,
                                                             int64_t count, int64_t rows,
                                                             int64_t cols) {
  for (int64_t y = 0; y < rows; ++y)
    for (int64_t x0 = 0; x0 < cols; x0 += 16) {
      const int64_t width = std::min<int64_t>(16, cols - x0);
      __m512 r[16];
      for (int64_t x = 0; x < 16; ++x)
        r[x] = x < width ? _mm512_loadu_ps(src + (y * ld + x0 + x) * step) : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t k = 0; k < count; ++k)
        _mm512_mask_storeu_ps(dst + k * stride + y * dst_ld + x0, lanes_mask(width), r[k]);
    }
}

}  // namespace scratchnet::simd
