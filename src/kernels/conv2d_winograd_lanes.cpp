// F(4x4, 3x3)'s transforms with the samples in the lanes. On planes of few tiles (`basic`'s
// 13x13 and 11x11: 9 or 16 tiles) a vector of one sample's tiles leaves most lanes idle;
// here lane k holds sample k of a chunk of 16, and every vector is full. Each plane of the
// chunk is first turned into a (rows, columns, 16) block (16 x 16 transposes of rows), the
// transforms run on whole vectors of it with the arithmetic of conv2d_winograd4.cpp's (the same
// values, lane for lane), and an output plane goes back through the same transposes.
#if defined(__x86_64__) || defined(_M_X64)

#include "conv2d_winograd.h"

namespace scratchnet::winograd {

namespace {

// Stores v at column `col` of a row of V, M or G: all 16 lanes, or the chunk's count.
__attribute__((target("avx512f"))) inline void store_tile(float* col, __mmask16 m, __m512 v) {
  if (m == 0xFFFF)
    _mm512_storeu_ps(col, v);
  else
    _mm512_mask_storeu_ps(col, m, v);
}

}  // namespace

__attribute__((target("avx512f"))) void input_transform4_lanes(float* v, float* xp, const float* x,
                                                               int64_t count, const Shape3& s) {
  const int64_t plane_v = s.planes * s.t_chunk, sample = s.planes * s.h * s.w;
  const int64_t rows = std::min(s.h, s.hp - s.pad), cols = std::min(s.w, s.wp - s.pad);
  const __mmask16 store = lanes_mask(count);
  for (int64_t c = 0; c < s.planes; ++c) {
    simd::rows_to_lanes(xp + (s.pad * s.wp + s.pad) * kLanes, s.wp, kLanes, x + c * s.h * s.w, s.w,
                        sample, count, rows, cols);
    for (int64_t ty = 0; ty < s.ty; ++ty)
      for (int64_t tx = 0; tx < s.tx; ++tx) {
        const float* patch = xp + (4 * ty * s.wp + 4 * tx) * kLanes;
        __m512 t[6][6];  // B^T d, column by column
#pragma GCC unroll 6
        for (int j = 0; j < 6; ++j) {
          __m512 col[6];
          for (int i = 0; i < 6; ++i) col[i] = _mm512_loadu_ps(patch + (i * s.wp + j) * kLanes);
          __m512 o[6];
          b6(o, col);
          for (int i = 0; i < 6; ++i) t[i][j] = o[i];
        }
        float* dst = v + c * s.t_chunk + (ty * s.tx + tx) * count;
#pragma GCC unroll 6
        for (int i = 0; i < 6; ++i) {  // (B^T d) B, row by row
          __m512 o[6];
          b6(o, t[i]);
          for (int j = 0; j < 6; ++j) store_tile(dst + (i * 6 + j) * plane_v, store, o[j]);
        }
      }
  }
}

__attribute__((target("avx512f"))) void output_transform4_lanes(float* out, float* yp,
                                                                const float* mm, int64_t count,
                                                                const float* bias,
                                                                const Shape3& s) {
  const int64_t plane_m = s.outs * s.t_chunk, sample = s.outs * s.oh * s.ow, ld = 4 * s.tx;
  const __mmask16 load = lanes_mask(count);
  for (int64_t o = 0; o < s.outs; ++o) {
    const ChannelEpilogue ce = channel_epilogue(bias, nullptr, o);
    for (int64_t ty = 0; ty < s.ty; ++ty)
      for (int64_t tx = 0; tx < s.tx; ++tx) {
        const float* src = mm + o * s.t_chunk + (ty * s.tx + tx) * count;
        __m512 r[4][6];  // A^T M
        a6_columns(r, src, plane_m, load);
        float* dst = yp + (4 * ty * ld + 4 * tx) * kLanes;
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {  // (A^T M A) row i
          __m512 yk[4];
          a6(yk, r[i]);
          for (int k = 0; k < 4; ++k)
            _mm512_storeu_ps(dst + (i * ld + k) * kLanes, finish(yk[k], ce));
        }
      }
    simd::lanes_to_rows(out + o * s.oh * s.ow, s.ow, sample, yp, ld, kLanes, count, s.oh, s.ow);
  }
}

__attribute__((target("avx512f"))) void grad_transform4_lanes(float* gt, float* dyp,
                                                              const float* dy, int64_t count,
                                                              const Shape3& s) {
  const int64_t plane_g = s.outs * s.t_chunk, sample = s.outs * s.oh * s.ow, ld = 4 * s.tx;
  const __mmask16 store = lanes_mask(count);
  for (int64_t o = 0; o < s.outs; ++o) {
    simd::rows_to_lanes(dyp, ld, kLanes, dy + o * s.oh * s.ow, s.ow, sample, count, s.oh, s.ow);
    for (int64_t ty = 0; ty < s.ty; ++ty)
      for (int64_t tx = 0; tx < s.tx; ++tx) {
        const float* tile = dyp + (4 * ty * ld + 4 * tx) * kLanes;
        __m512 t[6][4];  // A dY, column by column
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          __m512 col[4], r[6];
          for (int i = 0; i < 4; ++i) col[i] = _mm512_loadu_ps(tile + (i * ld + k) * kLanes);
          a6t(r, col);
          for (int i = 0; i < 6; ++i) t[i][k] = r[i];
        }
        float* dst = gt + o * s.t_chunk + (ty * s.tx + tx) * count;
#pragma GCC unroll 6
        for (int i = 0; i < 6; ++i) {  // (A dY) A^T, row by row
          __m512 r[6];
          a6t(r, t[i]);
          for (int j = 0; j < 6; ++j) store_tile(dst + (i * 6 + j) * plane_g, store, r[j]);
        }
      }
  }
}

}  // namespace scratchnet::winograd

#endif
