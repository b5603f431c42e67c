// epilogue_avx512.h — what a convolution's eval epilogue (Conv2dEpilogue: bias, BatchNorm,
// ReLU, 2x2 max-pooling) does to vectors of its outputs, shared by the kernels that run it
// inside their output loops (private to src/kernels, x86-64 only). Callable from files built
// for AVX-512 and from functions with target("avx512f").
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "scratchnet/layers/conv2d.h"

namespace scratchnet::simd {

// Output channel o's bias and, with an epilogue, its BatchNorm (if any) in every lane, or
// those of channels o .. o + 15, one per lane.
struct ChannelEpilogue {
  const Conv2dEpilogue* e;  // or null: the bias alone
  bool bn;                  // e has a BatchNorm
  __m512 bias, center, scale, shift;
};

// p[o] in every lane, or with per_lane p[o .. o + 15]; zeros for a null p.
__attribute__((target("avx512f"))) inline __m512 channel_values(const float* p, int64_t o,
                                                                bool per_lane) {
  if (!p) return _mm512_setzero_ps();
  return per_lane ? _mm512_loadu_ps(p + o) : _mm512_set1_ps(p[o]);
}

__attribute__((target("avx512f"))) inline ChannelEpilogue channel_epilogue(const float* bias,
                                                                           const Conv2dEpilogue* e,
                                                                           int64_t o,
                                                                           bool per_lane = false) {
  const bool bn = e && e->center;
  return {e,
          bn,
          channel_values(bias, o, per_lane),
          channel_values(bn ? e->center : nullptr, o, per_lane),
          channel_values(bn ? e->scale : nullptr, o, per_lane),
          channel_values(bn ? e->shift : nullptr, o, per_lane)};
}

// The epilogue of an output y that has its bias: with BatchNorm (y - center) * scale + shift,
// then ReLU; each step rounded as batch_norm_forward_eval and relu_forward do (y itself
// without one). The _round forms keep the compiler from fusing the multiply and add (maskz
// ones: GCC 12 warns about the undefined source of the others).
__attribute__((target("avx512f"))) inline __m512 epilogue(__m512 y, const ChannelEpilogue& c) {
  constexpr int kRound = _MM_FROUND_CUR_DIRECTION;
  constexpr __mmask16 kAll = 0xFFFF;
  if (!c.e) return y;
  const __m512 v =
      c.bn ? _mm512_maskz_add_round_ps(
                 kAll, _mm512_maskz_mul_round_ps(kAll, _mm512_sub_ps(y, c.center), c.scale, kRound),
                 c.shift, kRound)
           : y;
  const __m512 zero = _mm512_setzero_ps();
  return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);  // NaN stays
}

// y + bias, then the epilogue.
__attribute__((target("avx512f"))) inline __m512 finish(__m512 y, const ChannelEpilogue& c) {
  return epilogue(_mm512_add_ps(y, c.bias), c);
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

}  // namespace scratchnet::simd
