// Conv2d's backward pass for an output gradient that is mostly zeros. A convolution followed
// by 2x2 max pooling gets one value per window back (at most a quarter of its outputs, fewer
// after a ReLU); the direct sums then need only the nonzero terms:
//   d_in[n, c, y*s + i - p, x*s + j - p] = sum d_out[n, o, y, x] * weight[o, c, i, j]
//   d_weight[o, c, i, j] += sum d_out[n, o, y, x] * in[n, c, y*s + i - p, x*s + j - p]
//   d_bias[o] += sum d_out[n, o, y, x]
// over the nonzero d_out values (NaN included), for the 3x3 kernel at any stride and padding.
// Each plane's nonzero values are first listed with where their windows start. The channels c
// are in the lanes: the input and the input gradient are held transposed as (HP, WP, C16)
// planes per sample (zero padded, C rounded up to 16) and the weights as (OC, 9, C16).
//   input gradient, per sample: for each output position (y, x) in order, the sum over o (in
//     order, in registers) of d_out times the weights, then added once to its 9 places;
//   weight gradient, per output channel: the terms of samples 0, 1, ... in order, in
//     registers; bias gradient likewise.
// So the results depend on the data and the shape only, never on the threads, and for finite
// inputs and weights equal the direct sums less their zero terms (rounded in another order).
#include <algorithm>
#include <limits>
#include <vector>

#include "conv2d_kernels.h"
#include "scratchnet/parallel.h"

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include "scratch.h"
#include "transpose_avx512.h"

namespace scratchnet {

namespace {

constexpr int kLanes = 16;
constexpr int kTaps = 9;  // the 3x3 kernel

using simd::lanes_mask;

struct Sparse {
  const Conv2dDims& d;
  int64_t hp, wp, c16;   // padded plane, channels rounded up to 16
  int64_t cap;           // entries per (n, o) list
  const int32_t* where;  // (OH * OW + 15): output (y, x)'s window start y*s*WP + x*s
  int32_t* count;        // (N, OC): nonzero values per plane
  int32_t* at;           // (N, OC, cap): their windows' starts
  float* value;          // (N, OC, cap): the values
};

// The nonzero values of plane p = (n, o) of d_out, in order, with where their windows start in
// the padded (HP, WP) plane; 16 at a time, compressed without branches.
__attribute__((target("avx512f"))) void list_plane(const Sparse& sp, const float* d_out,
                                                   int64_t p) {
  const int64_t size = sp.d.oh * sp.d.ow;
  const float* g = d_out + p * size;
  int32_t* at = sp.at + p * sp.cap;
  float* value = sp.value + p * sp.cap;
  int32_t count = 0;
  for (int64_t i = 0; i < size; i += kLanes) {
    const __mmask16 m = lanes_mask(size - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, g + i);
    const __mmask16 nz = _mm512_mask_cmp_ps_mask(m, v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    const __m512i place = _mm512_loadu_si512(sp.where + i);
    _mm512_storeu_si512(at + count, _mm512_maskz_compress_epi32(nz, place));
    _mm512_storeu_ps(value + count, _mm512_maskz_compress_ps(nz, v));
    count += __builtin_popcount(nz);
  }
  sp.count[p] = count;
}

// How many of x[0, size) are not zero.
__attribute__((target("avx512f"))) int64_t nonzeros(const float* x, int64_t size) {
  int64_t count = 0;
  for (int64_t i = 0; i < size; i += kLanes) {
    const __mmask16 m = lanes_mask(size - i);
    count += __builtin_popcount(_mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, x + i),
                                                        _mm512_setzero_ps(), _CMP_NEQ_UQ));
  }
  return count;
}

// dst (HP, WP, C16) = the sample x (C, H, W) placed at (p, p), channels in the lanes; zeros
// elsewhere.
void to_channels(float* dst, const float* x, const Sparse& sp) {
  const Conv2dDims& d = sp.d;
  std::fill(dst, dst + sp.hp * sp.wp * sp.c16, 0.0f);
  for (int64_t c0 = 0; c0 < d.c; c0 += kLanes)
    simd::rows_to_lanes(dst + (d.padding * sp.wp + d.padding) * sp.c16 + c0, sp.wp, sp.c16,
                        x + c0 * d.h * d.w, d.w, d.h * d.w, std::min<int64_t>(kLanes, d.c - c0),
                        d.h, d.w);
}

// dx (C, H, W) = the part at (p, p) of src (HP, WP, C16): to_channels backwards.
void from_channels(float* dx, const float* src, const Sparse& sp) {
  const Conv2dDims& d = sp.d;
  for (int64_t c0 = 0; c0 < d.c; c0 += kLanes)
    simd::lanes_to_rows(dx + c0 * d.h * d.w, d.w, d.h * d.w,
                        src + (d.padding * sp.wp + d.padding) * sp.c16 + c0, sp.wp, sp.c16,
                        std::min<int64_t>(kLanes, d.c - c0), d.h, d.w);
}

// acc (HP, WP, C16) += the input-gradient terms of the V channel vectors from v0 for the
// window at `at` of the values g_o at one output position (o, g_o in `terms`, o in order):
// the sum over o first, in registers, then added once per tap.
template <int V>
__attribute__((target("avx512f"))) void add_window(float* acc, const float* wt, int64_t v0,
                                                   int32_t at, const int32_t* outs,
                                                   const float* values, int32_t count,
                                                   const Sparse& sp) {
  __m512 sum[kTaps][V];
  for (auto& tap : sum)
    for (auto& s : tap) s = _mm512_setzero_ps();
  for (int32_t e = 0; e < count; ++e) {
    const __m512 g = _mm512_set1_ps(values[e]);
    const float* w = wt + outs[e] * kTaps * sp.c16 + v0 * kLanes;
#pragma GCC unroll 9
    for (int t = 0; t < kTaps; ++t)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v)
        sum[t][v] = _mm512_fmadd_ps(g, _mm512_loadu_ps(w + t * sp.c16 + v * kLanes), sum[t][v]);
  }
  float* base = acc + at * sp.c16 + v0 * kLanes;
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
    for (int j = 0; j < 3; ++j)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        float* dst = base + (i * sp.wp + j) * sp.c16 + v * kLanes;
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), sum[i * 3 + j][v]));
      }
}

// One sample's input gradient into acc (HP, WP, C16), then into dx (C, H, W); wt (OC, 9, C16).
// Its nonzero d_out values are regrouped by output position (`count`, `outs` and `values`
// indexed by the window's place in the padded plane), so each window is added to once.
__attribute__((target("avx512f"))) void input_grad_sample(float* dx, float* acc, const float* wt,
                                                          int64_t n, const Sparse& sp) {
  const Conv2dDims& d = sp.d;
  thread_local std::vector<int32_t> count, outs;
  thread_local std::vector<float> values;
  const int64_t places = sp.hp * sp.wp;
  count.assign(static_cast<size_t>(places), 0);
  outs.resize(static_cast<size_t>(places * d.oc));
  values.resize(static_cast<size_t>(places * d.oc));
  for (int64_t o = 0; o < d.oc; ++o) {
    const int64_t p = n * d.oc + o;
    const int32_t* at = sp.at + p * sp.cap;
    const float* value = sp.value + p * sp.cap;
    for (int32_t e = 0; e < sp.count[p]; ++e) {
      const size_t slot = static_cast<size_t>(at[e] * d.oc + count[static_cast<size_t>(at[e])]++);
      outs[slot] = static_cast<int32_t>(o);
      values[slot] = value[e];
    }
  }
  std::fill(acc, acc + places * sp.c16, 0.0f);
  const int64_t vectors = sp.c16 / kLanes;
  for (int64_t y = 0; y < d.oh; ++y)
    for (int64_t x = 0; x < d.ow; ++x) {
      const int32_t at = static_cast<int32_t>(y * d.stride * sp.wp + x * d.stride);
      const int32_t terms = count[static_cast<size_t>(at)];
      if (terms == 0) continue;
      const int32_t* o = outs.data() + at * d.oc;
      const float* g = values.data() + at * d.oc;
      for (int64_t v0 = 0; v0 < vectors; v0 += 2) {
        if (v0 + 1 < vectors)
          add_window<2>(acc, wt, v0, at, o, g, terms, sp);
        else
          add_window<1>(acc, wt, v0, at, o, g, terms, sp);
      }
    }
  from_channels(dx, acc, sp);
}

// acc (9, C16) += output channel o's weight-gradient terms of samples [n0, n1) for the V
// channel vectors from v0, from xt (N, HP, WP, C16).
template <int V>
__attribute__((target("avx512f"))) void weight_grad_block(float* acc, const float* xt, int64_t o,
                                                          int64_t v0, int64_t n0, int64_t n1,
                                                          const Sparse& sp) {
  const Conv2dDims& d = sp.d;
  __m512 sum[kTaps][V];
  for (int t = 0; t < kTaps; ++t)
    for (int v = 0; v < V; ++v) sum[t][v] = _mm512_loadu_ps(acc + t * sp.c16 + (v0 + v) * kLanes);
  const int64_t plane = sp.hp * sp.wp * sp.c16;
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t p = n * d.oc + o;
    const int32_t* at = sp.at + p * sp.cap;
    const float* value = sp.value + p * sp.cap;
    const float* x = xt + n * plane + v0 * kLanes;
    for (int32_t e = 0; e < sp.count[p]; ++e) {
      const __m512 g = _mm512_set1_ps(value[e]);
      const float* base = x + at[e] * sp.c16;
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j)
#pragma GCC unroll 2
          for (int v = 0; v < V; ++v)
            sum[i * 3 + j][v] =
                _mm512_fmadd_ps(g, _mm512_loadu_ps(base + (i * sp.wp + j) * sp.c16 + v * kLanes),
                                sum[i * 3 + j][v]);
    }
  }
  for (int t = 0; t < kTaps; ++t)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(acc + t * sp.c16 + (v0 + v) * kLanes, sum[t][v]);
}

// d_weight += the weight gradients of output channels [o0, o1): the samples a few at a time
// (their transposed inputs stay in L1 while every channel runs), each channel's terms in
// sample order.
void weight_grads(float* d_weight, const float* xt, int64_t o0, int64_t o1, const Sparse& sp) {
  constexpr int64_t kSamples = 2;
  const Conv2dDims& d = sp.d;
  thread_local ScratchBuffer sums;
  float* buffer = sums.get((o1 - o0) * kTaps * sp.c16);  // (o1 - o0, 9, C16)
  std::fill(buffer, buffer + (o1 - o0) * kTaps * sp.c16, 0.0f);
  const int64_t vectors = sp.c16 / kLanes;
  for (int64_t n0 = 0; n0 < d.n; n0 += kSamples)
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t v0 = 0; v0 < vectors; v0 += 2) {
        float* acc = buffer + (o - o0) * kTaps * sp.c16;
        const int64_t n1 = std::min(d.n, n0 + kSamples);
        if (v0 + 1 < vectors)
          weight_grad_block<2>(acc, xt, o, v0, n0, n1, sp);
        else
          weight_grad_block<1>(acc, xt, o, v0, n0, n1, sp);
      }
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t c = 0; c < d.c; ++c)
      for (int t = 0; t < kTaps; ++t)
        d_weight[(o * d.c + c) * kTaps + t] += buffer[((o - o0) * kTaps + t) * sp.c16 + c];
}

}  // namespace

bool conv2d_sparse_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                            const float* in, const float* weight, const Conv2dDims& d) {
  if (!conv2d_has_avx512() || d.k != 3 || d.c < 8) return false;
  const int64_t hp = d.h + 2 * d.padding, wp = d.w + 2 * d.padding, size = d.oh * d.ow;
  const int64_t planes = d.n * d.oc, cap = size + kLanes;
  if (hp * wp > std::numeric_limits<int32_t>::max() ||
      planes * cap > (int64_t{1} << 25) ||    // lists of at most 256 MiB, a sample's regrouped
      hp * wp * d.oc > (int64_t{1} << 22) ||  // ones (input_grad_sample) of 32 MiB
      4 * nonzeros(d_out, d.oc * size) > d.oc * size)  // the first sample is dense
    return false;
  // The calling thread's buffers (named through references, so the other threads' work uses
  // these too).
  struct Buffers {
    std::vector<int32_t> where, count, at;
    ScratchBuffer value, xt, wt;
  };
  thread_local Buffers buffers;
  Buffers& b = buffers;
  b.where.resize(static_cast<size_t>(size + kLanes));
  for (int64_t i = 0; i < size; ++i)
    b.where[static_cast<size_t>(i)] =
        static_cast<int32_t>((i / d.ow) * d.stride * wp + (i % d.ow) * d.stride);
  b.count.resize(static_cast<size_t>(planes));
  b.at.resize(static_cast<size_t>(planes * cap));
  const Sparse sp{d,
                  hp,
                  wp,
                  (d.c + kLanes - 1) / kLanes * kLanes,
                  cap,
                  b.where.data(),
                  b.count.data(),
                  b.at.data(),
                  b.value.get(planes * cap)};
  parallel_for(planes, parallel_grain(size), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) list_plane(sp, d_out, p);
  });
  int64_t nonzero = 0;
  for (const int32_t c : b.count) nonzero += c;
  if (4 * nonzero > planes * size) return false;  // more than a quarter: not sparse

  if (d_in) {
    float* wt = b.wt.get(d.oc * kTaps * sp.c16);  // (OC, 9, C16)
    std::fill(wt, wt + d.oc * kTaps * sp.c16, 0.0f);
    for (int64_t o = 0; o < d.oc; ++o)
      for (int64_t c = 0; c < d.c; ++c)
        for (int t = 0; t < kTaps; ++t)
          wt[(o * kTaps + t) * sp.c16 + c] = weight[(o * d.c + c) * kTaps + t];
    parallel_for(d.n, [&](int64_t begin, int64_t end) {
      thread_local ScratchBuffer acc;
      for (int64_t n = begin; n < end; ++n)
        input_grad_sample(d_in + n * d.c * d.h * d.w, acc.get(hp * wp * sp.c16), wt, n, sp);
    });
  }
  if (d_bias)
    parallel_for(d.oc, parallel_grain(d.n * size), [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        float sum = 0.0f;
        for (int64_t n = 0; n < d.n; ++n) {
          const int64_t p = n * d.oc + o;
          for (int32_t e = 0; e < sp.count[p]; ++e) sum += sp.value[p * cap + e];
        }
        d_bias[o] += sum;
      }
    });
  if (!d_weight) return true;
  const int64_t plane = hp * wp * sp.c16;
  float* xt = b.xt.get(d.n * plane);  // (N, HP, WP, C16)
  parallel_for(d.n, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) to_channels(xt + n * plane, in + n * d.c * d.h * d.w, sp);
  });
  parallel_for(d.oc,
               [&](int64_t begin, int64_t end) { weight_grads(d_weight, xt, begin, end, sp); });
  return true;
}

}  // namespace scratchnet

#else  // not x86-64

namespace scratchnet {

bool conv2d_sparse_backward(float*, float*, float*, const float*, const float*, const float*,
                            const Conv2dDims&) {
  return false;
}

}  // namespace scratchnet

#endif
