// Conv2d's AVX-512 parts: the stride-1 unfolding (im2col / col2im),
// and direct kernels for a convolution with one input channel, a 3x3 kernel and stride 1
// (a network's first layer).
//
// Stride 1 unfolding copies, for each row (c, i, j) of col and output row y, the OW values
// in[c, y + i - padding, j - padding .. j - padding + OW - 1] in vectors of 16 whose lanes
// outside the input are masked (they load zeros); col2im adds them back the same way, in the
// order of col's rows.
//
// The direct kernels exist because for one input channel and a 3x3 kernel im2col would give a (9,
// OH*OW) matrix: gemm then spends more time loading and storing c than multiplying, so they work on
// the image itself.
//
// Each sample is copied into a zero-padded plane xp (HP, WP) so no load tests bounds. The
// output is computed in vectors of 16 columns x (the last one masked): the nine vectors
//   v[i][j] = xp[y + i, x + j .. x + j + 15]
// are loaded once and reused by every output channel:
//   out[oc, y, x..] = bias[oc] + sum_{i, j} weight[oc, i, j] * v[i][j]   (taps in order).
// The weight gradient is the matching sum of products, per output channel and tap:
//   d_weight[oc, i, j] += sum_{n, y, x} d_out[n, oc, y, x] * xp[n, y + i, x + j]
// accumulated in 16 lanes (masked lanes load zeros) over the batch in order and reduced in a
// fixed order at the end, so the result depends only on the shape, never on the threads.
#include <algorithm>
#include <vector>

#include "conv2d_kernels.h"
#include "scratchnet/parallel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "epilogue_avx512.h"
#include "transpose_avx512.h"

namespace scratchnet {

namespace {

constexpr int kK = 3;       // kernel size handled here
constexpr int kTaps = 9;    // kK * kK
constexpr int kLanes = 16;  // floats per AVX-512 vector

using simd::lanes_mask;

// xp (HP, WP) = the plane x (H, W) with `p` zeros on every side.
void pad_plane(float* xp, const float* x, const Conv2dDims& d) {
  const int64_t p = d.padding, wp = d.w + 2 * p, hp = d.h + 2 * p;
  if (p == 0) {
    std::copy(x, x + d.h * d.w, xp);
    return;
  }
  std::fill(xp, xp + p * wp, 0.0f);
  for (int64_t y = 0; y < d.h; ++y) {
    float* row = xp + (p + y) * wp;
    std::fill(row, row + p, 0.0f);
    std::copy(x + y * d.w, x + (y + 1) * d.w, row + p);
    std::fill(row + p + d.w, row + wp, 0.0f);
  }
  std::fill(xp + (p + d.h) * wp, xp + hp * wp, 0.0f);
}

float* plane_buffer(int64_t size) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < size) buf.resize(static_cast<size_t>(size));
  return buf.data();
}

// Lanes l of a vector of output columns x0 + l whose input column x0 + l + off lies in
// [0, w), and x0 + l < ow.
inline __mmask16 run_mask(int64_t x0, int64_t off, int64_t w, int64_t ow) {
  const int64_t lo = std::max<int64_t>(0, -(x0 + off));
  const int64_t hi = std::min<int64_t>({kLanes, w - (x0 + off), ow - x0});
  if (hi <= lo) return 0;
  const uint32_t upto = hi >= kLanes ? 0xFFFFu : (1u << hi) - 1u;
  return static_cast<__mmask16>(upto & ~((1u << lo) - 1u));
}

// Output channels [o0, o1) of one sample from its padded plane xp, then e's epilogue (when
// given, without a pool). Each input patch serves all the channels, so the stores go to as
// many planes at once: each plane's row two rows ahead is asked for, to be written (without
// that the stores waited on memory; channel by channel, reloading the patches, was 2x slower).
__attribute__((target("avx512f"))) void forward_sample(float* out, const float* xp,
                                                       const float* weight, const float* bias,
                                                       const Conv2dEpilogue* e, const Conv2dDims& d,
                                                       int64_t o0, int64_t o1) {
  const int64_t wp = d.w + 2 * d.padding, plane = d.oh * d.ow;
  for (int64_t y = 0; y < d.oh; ++y) {
    for (int64_t oc = o0; oc < o1; ++oc)
      simd::prefetch_ahead<true>(out + oc * plane, nullptr, (y + 2) * d.ow, d.ow, plane);
    for (int64_t x = 0; x < d.ow; x += kLanes) {
      const __mmask16 m = lanes_mask(d.ow - x);
      __m512 v[kTaps];
      for (int i = 0; i < kK; ++i)
        for (int j = 0; j < kK; ++j)
          v[i * kK + j] = _mm512_maskz_loadu_ps(m, xp + (y + i) * wp + x + j);
      float* dst = out + y * d.ow + x;
      for (int64_t oc = o0; oc < o1; ++oc) {
        const float* w = weight + oc * kTaps;
        __m512 acc = _mm512_set1_ps(bias ? bias[oc] : 0.0f);
        for (int t = 0; t < kTaps; ++t) acc = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), v[t], acc);
        if (e) acc = simd::epilogue(acc, simd::channel_epilogue(bias, e, oc));
        _mm512_mask_storeu_ps(dst + oc * plane, m, acc);
      }
    }
  }
}

// forward_sample with e's pool: each pair of output rows 32 columns at a time (the vectors of
// forward_sample, each through the epilogue), their 2x2 windows into 16 pooled columns.
__attribute__((target("avx512f"))) void forward_sample_pooled(
    float* out, const float* xp, const float* weight, const float* bias, const Conv2dEpilogue* e,
    const Conv2dDims& d, int64_t o0, int64_t o1) {
  const int64_t wp = d.w + 2 * d.padding, ph = d.oh / 2, pw = d.ow / 2;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t py = 0; py < ph; ++py)
    for (int64_t x = 0; x < 2 * pw; x += 2 * kLanes) {
      const int64_t cols = std::min<int64_t>(2 * kLanes, 2 * pw - x);
      const __mmask16 m[2] = {lanes_mask(cols), lanes_mask(std::max<int64_t>(0, cols - kLanes))};
      __m512 v[4][kK][2];  // input rows 2 py + r, shifted by j, columns x + 16 h ..
      for (int r = 0; r < 4; ++r)
        for (int j = 0; j < kK; ++j)
          for (int h = 0; h < 2; ++h)
            v[r][j][h] = _mm512_maskz_loadu_ps(m[h], xp + (2 * py + r) * wp + x + kLanes * h + j);
      float* dst = out + py * pw + x / 2;
      for (int64_t oc = o0; oc < o1; ++oc) {
        const float* w = weight + oc * kTaps;
        const simd::ChannelEpilogue ce = simd::channel_epilogue(bias, e, oc);
        __m512 acc[2][2];  // output row 2 py + a, columns x + 16 h ..
        for (int a = 0; a < 2; ++a)
          for (int h = 0; h < 2; ++h) {
            acc[a][h] = _mm512_set1_ps(bias ? bias[oc] : 0.0f);
            for (int i = 0; i < kK; ++i)
              for (int j = 0; j < kK; ++j)
                acc[a][h] =
                    _mm512_fmadd_ps(_mm512_set1_ps(w[i * kK + j]), v[a + i][j][h], acc[a][h]);
            acc[a][h] = simd::epilogue(acc[a][h], ce);
          }
        const __m512 pooled = simd::max4(_mm512_permutex2var_ps(acc[0][0], even, acc[0][1]),
                                         _mm512_permutex2var_ps(acc[0][0], odd, acc[0][1]),
                                         _mm512_permutex2var_ps(acc[1][0], even, acc[1][1]),
                                         _mm512_permutex2var_ps(acc[1][0], odd, acc[1][1]));
        _mm512_mask_storeu_ps(dst + oc * ph * pw, lanes_mask(cols / 2), pooled);
      }
    }
}

// acc (OC-range, 10, 16): per output channel nine tap accumulators and one for the bias, each
// 16 lanes, added into over one sample, whose output channel o0 + k has its gradient plane at
// g + k * g_stride.
__attribute__((target("avx512f"))) void param_grads_sample(float* acc, const float* g,
                                                           int64_t g_stride, const float* xp,
                                                           const Conv2dDims& d, int64_t o0,
                                                           int64_t o1) {
  const int64_t wp = d.w + 2 * d.padding, plane = d.oh * d.ow;
  constexpr int kSlots = kTaps + 1;
  for (int64_t o = o0; o < o1; o += 2) {
    const bool pair = o + 1 < o1;
    float* a0 = acc + (o - o0) * kSlots * kLanes;
    float* a1 = a0 + kSlots * kLanes;
    __m512 s0[kSlots], s1[kSlots];
    for (int t = 0; t < kSlots; ++t) {
      s0[t] = _mm512_loadu_ps(a0 + t * kLanes);
      s1[t] = pair ? _mm512_loadu_ps(a1 + t * kLanes) : _mm512_setzero_ps();
    }
    const float* g0 = g + (o - o0) * g_stride;
    const float* g1 = pair ? g0 + g_stride : g0;
    const float* next0 = o + 2 < o1 ? g0 + 2 * g_stride : nullptr;  // the next pair's planes
    const float* next1 = o + 3 < o1 ? g1 + 2 * g_stride : nullptr;
    for (int64_t y = 0; y < d.oh; ++y) {
      simd::prefetch_ahead(g0, next0, (y + 8) * d.ow, d.ow, plane);
      if (pair) simd::prefetch_ahead(g1, next1, (y + 8) * d.ow, d.ow, plane);
      for (int64_t x = 0; x < d.ow; x += kLanes) {
        const __mmask16 m = lanes_mask(d.ow - x);
        const __m512 e0 = _mm512_maskz_loadu_ps(m, g0 + y * d.ow + x);
        const __m512 e1 = _mm512_maskz_loadu_ps(m, g1 + y * d.ow + x);
        for (int i = 0; i < kK; ++i)
          for (int j = 0; j < kK; ++j) {
            const __m512 v = _mm512_maskz_loadu_ps(m, xp + (y + i) * wp + x + j);
            s0[i * kK + j] = _mm512_fmadd_ps(e0, v, s0[i * kK + j]);
            s1[i * kK + j] = _mm512_fmadd_ps(e1, v, s1[i * kK + j]);
          }
        s0[kTaps] = _mm512_add_ps(s0[kTaps], e0);
        s1[kTaps] = _mm512_add_ps(s1[kTaps], e1);
      }
    }
    for (int t = 0; t < kSlots; ++t) {
      _mm512_storeu_ps(a0 + t * kLanes, s0[t]);
      if (pair) _mm512_storeu_ps(a1 + t * kLanes, s1[t]);
    }
  }
}

// The 16 floats at v summed as simd::sum_lanes sums a vector (a fixed tree: halves, then
// quarters, ...).
__attribute__((target("avx512f"))) float sum_lanes(const float* v) {
  return simd::sum_lanes(_mm512_loadu_ps(v));
}

// ---- stride-1 products ("implicit GEMM") ----

// c rows [0, MR) x columns [0, 16*NV) = bias + sum_k a[r*kt + k] * src[off[k] + column],
// summing k = 0, 1, ... in order in one chain per element.
template <int MR, int NV>
__attribute__((target("avx512f"))) void s1_tile(float* c, int64_t ldc, const float* a,
                                                const float* src, const int64_t* off, int64_t kt,
                                                const float* bias) {
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    const __m512 b = _mm512_set1_ps(bias ? bias[r] : 0.0f);
    for (int v = 0; v < NV; ++v) acc[r][v] = b;
  }
  for (int64_t k = 0; k < kt; ++k) {
    const float* s = src + off[k];
    __m512 bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(s + v * kLanes);
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * kt + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + v * kLanes, acc[r][v]);
}

using S1Tile = void (*)(float*, int64_t, const float*, const float*, const int64_t*, int64_t,
                        const float*);

template <int MR>
constexpr S1Tile s1_tile_for(int nv) {
  return nv == 1 ? s1_tile<MR, 1> : nv == 2 ? s1_tile<MR, 2> : s1_tile<MR, 3>;
}

S1Tile s1_tile_for(int mr, int nv) {
  switch (mr) {
    case 1:
      return s1_tile_for<1>(nv);
    case 2:
      return s1_tile_for<2>(nv);
    case 3:
      return s1_tile_for<3>(nv);
    case 4:
      return s1_tile_for<4>(nv);
    case 5:
      return s1_tile_for<5>(nv);
    case 6:
      return s1_tile_for<6>(nv);
    case 7:
      return s1_tile_for<7>(nv);
    default:
      return s1_tile_for<8>(nv);
  }
}

// c rows [0, MR) x columns [0, 16*NV) += sum over samples n < count and t < len of
// x[n*ss + off[r] + t] * gt[n*gs + t*ldg + column], summed in that order onto c.
template <int MR, int NV>
__attribute__((target("avx512f"))) void s1_wgrad_tile(float* c, int64_t ldc, const float* x,
                                                      const int64_t* off, int64_t ss,
                                                      const float* gt, int64_t ldg, int64_t gs,
                                                      int64_t len, int64_t count) {
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_loadu_ps(c + r * ldc + v * kLanes);
  for (int64_t n = 0; n < count; ++n) {
    const float* rows[MR];
    for (int r = 0; r < MR; ++r) rows[r] = x + n * ss + off[r];
    const float* g = gt + n * gs;
    for (int64_t t = 0; t < len; ++t) {
      __m512 gv[NV];
      for (int v = 0; v < NV; ++v) gv[v] = _mm512_loadu_ps(g + t * ldg + v * kLanes);
      for (int r = 0; r < MR; ++r) {
        const __m512 xv = _mm512_set1_ps(rows[r][t]);
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(xv, gv[v], acc[r][v]);
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + v * kLanes, acc[r][v]);
}

using S1WgradTile = void (*)(float*, int64_t, const float*, const int64_t*, int64_t, const float*,
                             int64_t, int64_t, int64_t, int64_t);

template <int MR>
constexpr S1WgradTile s1_wgrad_tile_for(int nv) {
  switch (nv) {
    case 1:
      return s1_wgrad_tile<MR, 1>;
    case 2:
      return s1_wgrad_tile<MR, 2>;
    case 3:
      return s1_wgrad_tile<MR, 3>;
    default:
      return s1_wgrad_tile<MR, 4>;
  }
}

S1WgradTile s1_wgrad_tile_for(int mr, int nv) {
  switch (mr) {
    case 1:
      return s1_wgrad_tile_for<1>(nv);
    case 2:
      return s1_wgrad_tile_for<2>(nv);
    case 3:
      return s1_wgrad_tile_for<3>(nv);
    case 4:
      return s1_wgrad_tile_for<4>(nv);
    case 5:
      return s1_wgrad_tile_for<5>(nv);
    default:
      return s1_wgrad_tile_for<6>(nv);
  }
}

}  // namespace

bool conv2d_has_avx512() {
  static const bool avx512 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return avx512;
}

bool conv2d_direct_ok(const Conv2dDims& d) {
  return conv2d_has_avx512() && d.c == 1 && d.k == kK && d.stride == 1;
}

__attribute__((target("avx512f"))) void conv2d_im2col_s1_avx512(float* col, int64_t ld,
                                                                const float* x,
                                                                const Conv2dDims& d) {
  const int64_t k = d.k, p = d.padding;
  for (int64_t c = 0; c < d.c; ++c)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        float* row = col + ((c * k + i) * k + j) * ld;  // (OH, OW)
        const int64_t off = j - p;                      // input column = x + off
        for (int64_t y = 0; y < d.oh; ++y) {
          float* r = row + y * d.ow;
          const int64_t iy = y + i - p;
          if (iy < 0 || iy >= d.h) {
            for (int64_t xo = 0; xo < d.ow; xo += kLanes)
              _mm512_mask_storeu_ps(r + xo, lanes_mask(d.ow - xo), _mm512_setzero_ps());
            continue;
          }
          const float* src = x + (c * d.h + iy) * d.w + off;  // src[x] = in[c, iy, x + off]
          for (int64_t xo = 0; xo < d.ow; xo += kLanes) {
            const __m512 v = _mm512_maskz_loadu_ps(run_mask(xo, off, d.w, d.ow), src + xo);
            _mm512_mask_storeu_ps(r + xo, lanes_mask(d.ow - xo), v);
          }
        }
      }
}

__attribute__((target("avx512f"))) void conv2d_col2im_s1_avx512(float* dx, const float* col,
                                                                const Conv2dDims& d) {
  const int64_t k = d.k, p = d.padding;
  for (int64_t c = 0; c < d.c; ++c)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        const float* row = col + ((c * k + i) * k + j) * d.oh * d.ow;  // (OH, OW)
        const int64_t off = j - p;
        for (int64_t y = 0; y < d.oh; ++y) {
          const int64_t iy = y + i - p;
          if (iy < 0 || iy >= d.h) continue;
          const float* r = row + y * d.ow;
          float* dst = dx + (c * d.h + iy) * d.w + off;  // dst[x] = dx[c, iy, x + off]
          for (int64_t xo = 0; xo < d.ow; xo += kLanes) {
            const __mmask16 m = run_mask(xo, off, d.w, d.ow);
            const __m512 sum =
                _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + xo), _mm512_maskz_loadu_ps(m, r + xo));
            _mm512_mask_storeu_ps(dst + xo, m, sum);
          }
        }
      }
}

void conv2d_direct_forward(float* out, const float* in, const float* weight, const float* bias,
                           const Conv2dDims& d, const Conv2dEpilogue* e) {
  const int64_t hp = d.h + 2 * d.padding, wp = d.w + 2 * d.padding;
  const bool pool = e && e->pool;
  const int64_t out_size = d.oc * (pool ? (d.oh / 2) * (d.ow / 2) : d.oh * d.ow);
  auto run = [&](int64_t n0, int64_t n1, int64_t o0, int64_t o1) {
    float* xp = plane_buffer(hp * wp);  // (HP, WP)
    for (int64_t n = n0; n < n1; ++n) {
      pad_plane(xp, in + n * d.h * d.w, d);
      (pool ? forward_sample_pooled : forward_sample)(out + n * out_size, xp, weight, bias, e, d,
                                                      o0, o1);
    }
  };
  if (d.n >= num_threads()) {
    parallel_for(d.n, [&](int64_t n0, int64_t n1) { run(n0, n1, 0, d.oc); });
    return;
  }
  for (int64_t n = 0; n < d.n; ++n)
    parallel_for(d.oc, [&](int64_t o0, int64_t o1) { run(n, n + 1, o0, o1); });
}

void conv2d_direct_param_grads(float* d_weight, float* d_bias, const float* d_out, const float* in,
                               const Conv2dDims& d, int64_t o0, int64_t o1,
                               const Conv2dBackwardFusion::ChannelFill* fill) {
  const int64_t hp = d.h + 2 * d.padding, wp = d.w + 2 * d.padding, plane = d.oh * d.ow;
  constexpr int kSlots = kTaps + 1;
  constexpr int64_t kBlock = 4;  // output channels filled at once: (4, N, OH, OW)
  thread_local std::vector<float> acc_buf, block;
  acc_buf.assign(static_cast<size_t>((o1 - o0) * kSlots * kLanes), 0.0f);  // (o1-o0, 10, 16)
  float* acc = acc_buf.data();
  float* xp = plane_buffer(hp * wp);  // (HP, WP)
  if (!fill) {
    for (int64_t n = 0; n < d.n; ++n) {
      pad_plane(xp, in + n * d.h * d.w, d);
      param_grads_sample(acc, d_out + (n * d.oc + o0) * plane, plane, xp, d, o0, o1);
    }
  }
  const int64_t channel = d.n * plane;
  if (fill) block.resize(static_cast<size_t>(kBlock * channel));
  for (int64_t b0 = o0; fill && b0 < o1; b0 += kBlock) {
    const int64_t b1 = std::min(b0 + kBlock, o1);
    for (int64_t o = b0; o < b1; ++o) (*fill)(block.data() + (o - b0) * channel, plane, o);
    for (int64_t n = 0; n < d.n; ++n) {
      pad_plane(xp, in + n * d.h * d.w, d);
      param_grads_sample(acc + (b0 - o0) * kSlots * kLanes, block.data() + n * plane, channel, xp,
                         d, b0, b1);
    }
  }
  for (int64_t o = o0; o < o1; ++o) {
    const float* a = acc + (o - o0) * kSlots * kLanes;
    if (d_weight)
      for (int t = 0; t < kTaps; ++t) d_weight[o * kTaps + t] += sum_lanes(a + t * kLanes);
    if (d_bias) d_bias[o] += sum_lanes(a + kTaps * kLanes);
  }
}

__attribute__((target("avx512f"))) void conv2d_copy_rows_avx512(float* dst, int64_t ldd,
                                                                const float* src, int64_t lds,
                                                                int64_t rows, int64_t cols) {
  for (int64_t y = 0; y < rows; ++y)
    for (int64_t x = 0; x < cols; x += kLanes) {
      const __mmask16 m = lanes_mask(cols - x);
      _mm512_mask_storeu_ps(dst + y * ldd + x, m, _mm512_maskz_loadu_ps(m, src + y * lds + x));
    }
}

__attribute__((target("avx512f"))) float conv2d_sum_avx512(const float* x, int64_t stride,
                                                           int64_t rows, int64_t len) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < len; t += kLanes)
      acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(lanes_mask(len - t), x + r * stride + t));
  return simd::sum_lanes(acc);
}

void conv2d_s1_product_avx512(float* c, int64_t ldc, const float* a, int64_t m, int64_t kt,
                              const float* src, const int64_t* off, int64_t t0, int64_t t1,
                              const float* bias) {
  constexpr int64_t kTile = 3 * kLanes;
  for (int64_t t = t0; t < t1; t += kTile) {
    const int nv = static_cast<int>(std::min<int64_t>(kTile, t1 - t) / kLanes);
    for (int64_t m0 = 0; m0 < m; m0 += 8) {
      const int mr = static_cast<int>(std::min<int64_t>(8, m - m0));
      s1_tile_for(mr, nv)(c + m0 * ldc + t, ldc, a + m0 * kt, src + t, off, kt,
                          bias ? bias + m0 : nullptr);
    }
  }
}

void conv2d_s1_wgrad_avx512(float* c, int64_t ldc, int64_t m, int64_t n, const float* x,
                            const int64_t* off, int64_t ss, const float* gt, int64_t ldg,
                            int64_t gs, int64_t len, int64_t count) {
  constexpr int64_t kRows = 6, kCols = 4 * kLanes;
  for (int64_t r0 = 0; r0 < m; r0 += kRows)
    for (int64_t c0 = 0; c0 < n; c0 += kCols) {
      const int mr = static_cast<int>(std::min(kRows, m - r0));
      const int nv = static_cast<int>(std::min(kCols, n - c0) / kLanes);
      s1_wgrad_tile_for(mr, nv)(c + r0 * ldc + c0, ldc, x, off + r0, ss, gt + c0, ldg, gs, len,
                                count);
    }
}

}  // namespace scratchnet

#else  // not x86-64: no direct kernels; the unfolding has portable versions in conv2d_gemm.cpp

namespace scratchnet {

bool conv2d_has_avx512() { return false; }
bool conv2d_direct_ok(const Conv2dDims&) { return false; }
void conv2d_im2col_s1_avx512(float*, int64_t, const float*, const Conv2dDims&) {}
void conv2d_col2im_s1_avx512(float*, const float*, const Conv2dDims&) {}
void conv2d_direct_forward(float*, const float*, const float*, const float*, const Conv2dDims&,
                           const Conv2dEpilogue*) {}
void conv2d_direct_param_grads(float*, float*, const float*, const float*, const Conv2dDims&,
                               int64_t, int64_t, const Conv2dBackwardFusion::ChannelFill*) {}
void conv2d_copy_rows_avx512(float*, int64_t, const float*, int64_t, int64_t, int64_t) {}
float conv2d_sum_avx512(const float*, int64_t, int64_t, int64_t) { return 0; }
void conv2d_s1_product_avx512(float*, int64_t, const float*, int64_t, int64_t, const float*,
                              const int64_t*, int64_t, int64_t, const float*) {}
void conv2d_s1_wgrad_avx512(float*, int64_t, int64_t, int64_t, const float*, const int64_t*,
                            int64_t, const float*, int64_t, int64_t, int64_t, int64_t) {}

}  // namespace scratchnet

#endif
