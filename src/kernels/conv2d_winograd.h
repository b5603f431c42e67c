// conv2d_winograd.h — what the Winograd convolutions' two files share (private to src/,
// x86-64 only): conv2d_winograd.cpp runs the passes and has F(2x2, 3x3)'s transforms,
// conv2d_winograd4.cpp has F(4x4, 3x3)'s. The algorithm is described at the top of
// conv2d_winograd.cpp.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "scratchnet/layers/conv2d.h"

namespace scratchnet::winograd {

constexpr int kLanes = 16;

// One convolution: `planes` input planes (h, w) padded by `pad`, `outs` output planes, in
// output tiles of m x m: F(2x2, 3x3) (m = 2) or F(4x4, 3x3) (m = 4).
struct Shape3 {
  int64_t n, planes, h, w, pad, outs;
  int64_t m, positions;    // tile size, and (m + 2)^2 positions of the transforms
  int64_t oh, ow;          // output: h + 2*pad - 2, likewise
  int64_t ty, tx, tiles;   // tiles per sample: ceil(oh / m) x ceil(ow / m)
  int64_t hp, wp;          // padded plane: every tile's (m + 2)^2 patch fits
  int64_t chunk, t_chunk;  // samples per chunk and tiles per chunk

  // Chunks of at least min_tiles tiles (or the whole batch).
  Shape3(int64_t n_, int64_t planes_, int64_t h_, int64_t w_, int64_t pad_, int64_t outs_,
         int64_t m_, int64_t min_tiles)
      : n(n_), planes(planes_), h(h_), w(w_), pad(pad_), outs(outs_), m(m_) {
    positions = (m + 2) * (m + 2);
    oh = h + 2 * pad - 2;
    ow = w + 2 * pad - 2;
    ty = (oh + m - 1) / m;
    tx = (ow + m - 1) / m;
    tiles = ty * tx;
    hp = m * ty + 2;
    wp = m * tx + 2;
    chunk = std::clamp<int64_t>((min_tiles + tiles - 1) / tiles, 1, n);
    t_chunk = chunk * tiles;
  }
};

// Lanes [0, count) set, all of them for count >= 16.
inline __mmask16 lanes_mask(int64_t count) {
  return count >= kLanes ? static_cast<__mmask16>(0xFFFF)
                         : static_cast<__mmask16>((1u << count) - 1u);
}

// Indices for _mm512_permutex2var_ps(a, idx, b) giving a0 b0 a1 b1 .. a7 b7 (half 0) or
// a8 b8 .. a15 b15 (half 1).
__attribute__((target("avx512f"))) inline __m512i interleave_index(int half) {
  return _mm512_add_epi32(_mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                          _mm512_set1_epi32(8 * half));
}

// Output channel o's bias and, with an epilogue, its BatchNorm (if any) in every lane.
struct ChannelEpilogue {
  const Conv2dEpilogue* e;  // or null: the bias alone
  bool bn;                  // e has a BatchNorm
  __m512 bias, center, scale, shift;
};

__attribute__((target("avx512f"))) inline ChannelEpilogue channel_epilogue(const float* bias,
                                                                           const Conv2dEpilogue* e,
                                                                           int64_t o) {
  const bool bn = e && e->center;
  return {e,
          bn,
          _mm512_set1_ps(bias ? bias[o] : 0.0f),
          _mm512_set1_ps(bn ? e->center[o] : 0.0f),
          _mm512_set1_ps(bn ? e->scale[o] : 0.0f),
          _mm512_set1_ps(bn ? e->shift[o] : 0.0f)};
}

// y + bias, then with an epilogue: with BatchNorm (y - center) * scale + shift, then ReLU;
// each step rounded as batch_norm_forward_eval and relu_forward do. The _round forms keep the
// compiler from fusing the multiply and add (maskz ones: GCC 12 warns about the undefined
// source of the others).
__attribute__((target("avx512f"))) inline __m512 finish(__m512 y, const ChannelEpilogue& c) {
  constexpr int kRound = _MM_FROUND_CUR_DIRECTION;
  constexpr __mmask16 kAll = 0xFFFF;
  y = _mm512_add_ps(y, c.bias);
  if (!c.e) return y;
  const __m512 v =
      c.bn ? _mm512_maskz_add_round_ps(
                 kAll, _mm512_maskz_mul_round_ps(kAll, _mm512_sub_ps(y, c.center), c.scale, kRound),
                 c.shift, kRound)
           : y;
  const __m512 zero = _mm512_setzero_ps();
  return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);  // NaN stays
}

// The 2x2 window a, b (top row), c, d scanned as MaxPool2d does: a strictly greater value or
// a NaN takes over.
__attribute__((target("avx512f"))) inline __m512 max4(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m512 best = a;
  for (const __m512 v : {b, c, d}) {
    const __mmask16 take =
        _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    best = _mm512_mask_mov_ps(best, take, v);
  }
  return best;
}

// F(4x4, 3x3)'s transforms (conv2d_winograd4.cpp), each with the contract of its F(2x2, 3x3)
// counterpart in conv2d_winograd.cpp on 4x4 tiles: V, M and G have 36 positions.
void input_transform4(float* v, int64_t t0, const float* xp, const Shape3& s);
void output_transform4(float* out, const float* mm, int64_t t0, const float* bias,
                       const Conv2dEpilogue* e, const Shape3& s);
void grad_transform4(float* gt, int64_t t0, const float* dy, const Shape3& s);
void filter_transform4(float* u, const float* weight, int64_t outs, int64_t planes, int64_t o0,
                       int64_t o1);
void filter_grad_transform4(float* d_weight, const float* du, int64_t outs, int64_t planes,
                            int64_t o0, int64_t o1);

}  // namespace scratchnet::winograd
