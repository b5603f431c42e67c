// transpose_avx512.h — the 16 x 16 in-register transpose of floats, and the shuffles it is
// made of (private to src/kernels, x86-64 only). Callable from files built for AVX-512 and
// from functions with target("avx512f").
#pragma once

#include <immintrin.h>

namespace scratchnet::simd {

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

}  // namespace scratchnet::simd
