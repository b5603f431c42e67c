// conv2d_winograd.h — what the Winograd convolutions' two files share (private to src/,
// x86-64 only): conv2d_winograd.cpp runs the passes and has F(2x2, 3x3)'s transforms,
// conv2d_winograd4.cpp has F(4x4, 3x3)'s. The algorithm is described at the top of
// conv2d_winograd.cpp.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "epilogue_avx512.h"
#include "scratchnet/layers/conv2d.h"
#include "transpose_avx512.h"

namespace scratchnet::winograd {

constexpr int kLanes = 16;

// One convolution: `planes` input planes (h, w) padded by `pad`, `outs` output planes, in
// output tiles of m x m: F(2x2, 3x3) (m = 2) or F(4x4, 3x3) (m = 4). With `lanes` (F(4x4, 3x3)
// only) the transforms hold 16 samples' same tile per vector, and chunks have 16 samples.
struct Shape3 {
  int64_t n, planes, h, w, pad, outs;
  int64_t m, positions;    // tile size, and (m + 2)^2 positions of the transforms
  bool lanes;              // samples in the transforms' lanes
  int64_t oh, ow;          // output: h + 2*pad - 2, likewise
  int64_t ty, tx, tiles;   // tiles per sample: ceil(oh / m) x ceil(ow / m)
  int64_t hp, wp;          // padded plane: every tile's (m + 2)^2 patch fits
  int64_t chunk, t_chunk;  // samples per chunk; columns of V, M and G (t_chunk above)

  // Chunks of at least min_tiles tiles (or the whole batch); of 16 samples with lanes.
  Shape3(int64_t n_, int64_t planes_, int64_t h_, int64_t w_, int64_t pad_, int64_t outs_,
         int64_t m_, int64_t min_tiles, bool lanes_ = false)
      : n(n_), planes(planes_), h(h_), w(w_), pad(pad_), outs(outs_), m(m_), lanes(lanes_) {
    positions = (m + 2) * (m + 2);
    oh = h + 2 * pad - 2;
    ow = w + 2 * pad - 2;
    ty = (oh + m - 1) / m;
    tx = (ow + m - 1) / m;
    tiles = ty * tx;
    hp = m * ty + 2;
    wp = m * tx + 2;
    chunk = lanes ? std::min<int64_t>(kLanes, n)
                  : std::clamp<int64_t>((min_tiles + tiles - 1) / tiles, 1, n);
    // A chunk's tiles, 16 more where rows of V would be a multiple of 1 KiB apart (they share
    // cache sets, and gemm then copies them rather than read them in place).
    t_chunk = chunk * tiles + (chunk * tiles % 256 == 0 ? kLanes : 0);
  }
};

using simd::lanes_mask;

// Indices for _mm512_permutex2var_ps(a, idx, b) giving a0 b0 a1 b1 .. a7 b7 (half 0) or
// a8 b8 .. a15 b15 (half 1).
__attribute__((target("avx512f"))) inline __m512i interleave_index(int half) {
  return _mm512_add_epi32(_mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                          _mm512_set1_epi32(8 * half));
}

using simd::channel_epilogue;
using simd::ChannelEpilogue;
using simd::finish;
using simd::max4;

// F(4x4, 3x3)'s matrices (conv2d_winograd4.cpp) on vectors of 16 tiles.

// B^T z for the 6 vectors z (a column or a row of patches).
__attribute__((target("avx512f"))) inline void b6(__m512 o[6], const __m512 z[6]) {
  const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
  const __m512 two = _mm512_set1_ps(2.0f);
  const __m512 s12 = _mm512_add_ps(z[1], z[2]), d12 = _mm512_sub_ps(z[1], z[2]);
  const __m512 s34 = _mm512_add_ps(z[3], z[4]), d43 = _mm512_sub_ps(z[4], z[3]);
  const __m512 d42 = _mm512_sub_ps(z[4], z[2]), d31 = _mm512_sub_ps(z[3], z[1]);
  o[0] = _mm512_fmadd_ps(four, z[0], _mm512_fnmadd_ps(five, z[2], z[4]));
  o[1] = _mm512_fnmadd_ps(four, s12, s34);
  o[2] = _mm512_fmadd_ps(four, d12, d43);
  o[3] = _mm512_fmadd_ps(two, d31, d42);
  o[4] = _mm512_fnmadd_ps(two, d31, d42);
  o[5] = _mm512_fmadd_ps(four, z[1], _mm512_fnmadd_ps(five, z[3], z[5]));
}

// A^T m for the 6 vectors m.
__attribute__((target("avx512f"))) inline void a6(__m512 y[4], const __m512 m[6]) {
  const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
  const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
  y[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
  y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
  y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
  y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), m[5]);
}

// r = A^T M for the 36 vectors of M at src (positions plane apart, lanes `load`): the first
// half of an output transform, column by column.
__attribute__((target("avx512f"))) inline void a6_columns(__m512 r[4][6], const float* src,
                                                          int64_t plane, __mmask16 load) {
#pragma GCC unroll 6
  for (int j = 0; j < 6; ++j) {
    __m512 col[6], yv[4];
    for (int i = 0; i < 6; ++i) col[i] = _mm512_maskz_loadu_ps(load, src + (i * 6 + j) * plane);
    a6(yv, col);
    for (int i = 0; i < 4; ++i) r[i][j] = yv[i];
  }
}

// A z for the 4 vectors z: (z0, z0 + z1 + z2 + z3, z0 - z1 + z2 - z3, z0 + 2 z1 + 4 z2 + 8 z3,
// z0 - 2 z1 + 4 z2 - 8 z3, z3).
__attribute__((target("avx512f"))) inline void a6t(__m512 o[6], const __m512 z[4]) {
  const __m512 s02 = _mm512_add_ps(z[0], z[2]), s13 = _mm512_add_ps(z[1], z[3]);
  const __m512 f02 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), z[2], z[0]);
  const __m512 f13 = _mm512_fmadd_ps(_mm512_set1_ps(8.0f), z[3], _mm512_add_ps(z[1], z[1]));
  o[0] = z[0];
  o[1] = _mm512_add_ps(s02, s13);
  o[2] = _mm512_sub_ps(s02, s13);
  o[3] = _mm512_add_ps(f02, f13);
  o[4] = _mm512_sub_ps(f02, f13);
  o[5] = z[3];
}

// B z for the 6 vectors z (B^T's transpose: b6 backwards).
__attribute__((target("avx512f"))) inline void b6t(__m512 o[6], const __m512 z[6]) {
  const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
  const __m512 two = _mm512_set1_ps(2.0f);
  const __m512 s12 = _mm512_add_ps(z[1], z[2]), d21 = _mm512_sub_ps(z[2], z[1]);
  const __m512 s34 = _mm512_add_ps(z[3], z[4]), d43 = _mm512_sub_ps(z[4], z[3]);
  o[0] = _mm512_mul_ps(four, z[0]);
  o[1] = _mm512_fmadd_ps(four, d21, _mm512_fmadd_ps(two, d43, _mm512_mul_ps(four, z[5])));
  o[2] = _mm512_fnmsub_ps(five, z[0], _mm512_fmadd_ps(four, s12, s34));
  o[3] = _mm512_fnmsub_ps(five, z[5], _mm512_fmadd_ps(two, d43, d21));
  o[4] = _mm512_add_ps(_mm512_add_ps(z[0], s12), s34);
  o[5] = z[5];
}

// F(4x4, 3x3)'s transforms (conv2d_winograd4.cpp), each with the contract of its F(2x2, 3x3)
// counterpart in conv2d_winograd.cpp on 4x4 tiles: V, M and G have 36 positions. The input
// transform reads the sample's planes x (planes, h, w) as they are, the padding being zeros
// it makes (the F(2x2, 3x3) one reads them padded).
void input_transform4(float* v, int64_t t0, const float* x, const Shape3& s);
void output_transform4(float* out, const float* mm, int64_t t0, const float* bias,
                       const Conv2dEpilogue* e, const Shape3& s);
void grad_transform4(float* gt, int64_t t0, const float* dy, const Shape3& s);
void filter_transform4(float* u, const float* weight, int64_t outs, int64_t planes, int64_t o0,
                       int64_t o1);
// The input transform backwards, for the input gradient of one sample: dx (planes, h, w) = the
// sum of B dV B^T for each tile's dV, read from P (36, planes, t_chunk) columns [t0, t0 +
// tiles), at its patch (padded rows 4 ty .., columns 4 tx ..; neighbouring patches overlap by
// 2), cropped to the plane. dx is overwritten; with relu_x (the sample's input, (planes, h, w)),
// by zero where relu_x <= 0 (relu_backward's values: the gradient through a ReLU before).
void input_grad_transform4(float* dx, const float* p, int64_t t0, const float* relu_x,
                           const Shape3& s);
void filter_grad_transform4(float* d_weight, const float* du, int64_t outs, int64_t planes,
                            int64_t o0, int64_t o1);
// sums (outs) = (first ? 0 : sums) + each output channel's sum over G's (36, outs, t_chunk)
// first `tiles` columns' tiles dY, which is G's position 7: (A dY A^T) at (1, 1), A's second
// row being all ones.
void tile_sums4(float* sums, const float* gt, int64_t tiles, bool first, const Shape3& s);

// F(4x4, 3x3)'s transforms with the samples in the lanes (conv2d_winograd_lanes.cpp), for
// planes of few tiles (Shape3::lanes): a chunk of count <= 16 samples at once, its tile t of
// sample k in column t * count + k of V, M and G. x, out and dy point at the chunk's first
// sample; the buffers are (rows, columns, 16) planes of the chunk's samples.
//   xp (hp, wp, 16): zero outside the input's place at (pad, pad), which the call fills.
//   yp (4 ty, 4 tx, 16): any values.
//   dyp (4 ty, 4 tx, 16): zero past (oh, ow), which the call fills.
void input_transform4_lanes(float* v, float* xp, const float* x, int64_t count, const Shape3& s);
void output_transform4_lanes(float* out, float* yp, const float* mm, int64_t count,
                             const float* bias, const Shape3& s);
void grad_transform4_lanes(float* gt, float* dyp, const float* dy, int64_t count, const Shape3& s);

}  // namespace scratchnet::winograd
