// batch_norm_sums.h — the per-channel pieces that batch_norm.cpp and batch_norm_pool.cpp
// share (private to src/): sums, statistics, the affine map and the training backward.
//
// A channel is N rows of `spatial` contiguous values, row i at a + i * stride. Every sum is
// taken in double, in an order that depends only on N and `spatial` (never on the thread
// count or on where the rows live), so a channel copied elsewhere sums to the same bits.
// The vector paths, chosen by gemm_isa() (vector_path), give the scalar loops' bits: the files that
// include this header are compiled with -ffp-contract=off (CMakeLists.txt), so that no multiply and
// add become one instruction.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "scratchnet/kernels/gemm.h"

namespace scratchnet::batch_norm_sums {

constexpr int kLanes = 8;  // independent partial sums, so the reductions vectorise
constexpr int kRows = 4;   // rows the vector paths sum at once (independent chains)

// The vector path for gemm_isa(): its name is compared only when the set changes (the row
// helpers ask on every call, thousands of times per training step).
enum class VectorPath { kAvx512, kAvx2, kPortable };
inline VectorPath vector_path() {
  thread_local const char* name = nullptr;
  thread_local VectorPath path = VectorPath::kPortable;
  if (const char* now = gemm_isa(); now != name) {
    const std::string_view isa(now);
    path = isa == "avx512" ? VectorPath::kAvx512
           : isa == "avx2" ? VectorPath::kAvx2
                           : VectorPath::kPortable;
    name = now;
  }
  return path;
}

// The kLanes partial sums combined in a fixed tree.
inline double combine_lanes(const double* l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

// sum_{i < len} term(i) in double: kLanes partial sums combined by combine_lanes, then the
// tail. The order depends only on len, never on the thread count.
template <typename F>
double lane_sum(int64_t len, F term) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(i + l);
  double s = combine_lanes(acc);
  for (; i < len; ++i) s += term(i);
  return s;
}

// What channel_sum adds up per value: x, (x - center)^2 or x * (y - center), in double.
enum class Term { kValue, kSquare, kProduct };

template <Term kTerm, typename T>
double term_of(const T* a, const T* b, double center, int64_t s) {
  const double x = static_cast<double>(a[s]);
  if constexpr (kTerm == Term::kValue) {
    return x;
  } else if constexpr (kTerm == Term::kSquare) {
    const double d = x - center;
    return d * d;
  } else {
    return x * (static_cast<double>(b[s]) - center);
  }
}

#if defined(__x86_64__) || defined(_M_X64)

// The vector versions below compute term_of with separate multiplies and adds (no fused
// multiply-add), so every lane rounds as the scalar code does, and keep lane_sum's kLanes
// partial sums for four rows at a time (independent chains of additions); each row's sum is
// added to the total in row order, so the results have the same bits as the scalar loop.

// Row pointers for rows i .. i + kRows of a and b; spare chains repeat the last row.
template <typename T>
int row_block(const T** ar, const T** br, const T* a, int64_t a_stride, const T* b,
              int64_t b_stride, int64_t i, int64_t n) {
  const int rows = static_cast<int>(std::min<int64_t>(kRows, n - i));
  for (int r = 0; r < kRows; ++r) {
    const int64_t row = i + std::min(r, rows - 1);
    ar[r] = a + row * a_stride;
    br[r] = b ? b + row * b_stride : nullptr;
  }
  return rows;
}

// term_of for 4 consecutive floats (half of the kLanes lanes) with AVX2.
template <Term kTerm>
__attribute__((target("avx2"))) inline __m256d term4(const float* a, const float* b, __m256d c) {
  const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(a));
  if constexpr (kTerm == Term::kValue) {
    return x;
  } else if constexpr (kTerm == Term::kSquare) {
    const __m256d d = _mm256_sub_pd(x, c);
    return _mm256_mul_pd(d, d);
  } else {
    return _mm256_mul_pd(x, _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(b)), c));
  }
}

template <Term kTerm>
__attribute__((target("avx2"))) double channel_sum_avx2(const float* a, int64_t a_stride,
                                                        const float* b, int64_t b_stride,
                                                        double center, int64_t n, int64_t spatial,
                                                        double total) {
  const __m256d c = _mm256_set1_pd(center);
  for (int64_t i = 0; i < n; i += kRows) {
    const float* ar[kRows];
    const float* br[kRows];
    const int rows = row_block(ar, br, a, a_stride, b, b_stride, i, n);
    __m256d lo[kRows], hi[kRows];
    for (int r = 0; r < kRows; ++r) lo[r] = hi[r] = _mm256_setzero_pd();
    int64_t s = 0;
    for (; s + kLanes <= spatial; s += kLanes)
      for (int r = 0; r < kRows; ++r) {
        lo[r] = _mm256_add_pd(lo[r], term4<kTerm>(ar[r] + s, br[r] ? br[r] + s : nullptr, c));
        hi[r] =
            _mm256_add_pd(hi[r], term4<kTerm>(ar[r] + s + 4, br[r] ? br[r] + s + 4 : nullptr, c));
      }
    for (int r = 0; r < rows; ++r) {
      alignas(32) double l[kLanes];
      _mm256_store_pd(l, lo[r]);
      _mm256_store_pd(l + 4, hi[r]);
      double v = combine_lanes(l);
      for (int64_t t = s; t < spatial; ++t) v += term_of<kTerm>(ar[r], br[r], center, t);
      total += v;
    }
  }
  return total;
}

// term_of for kLanes = 8 consecutive floats with AVX-512.
template <Term kTerm>
__attribute__((target("avx512f"))) inline __m512d term8(const float* a, const float* b, __m512d c) {
  const __m512d x = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(a));
  if constexpr (kTerm == Term::kValue) {
    return x;
  } else if constexpr (kTerm == Term::kSquare) {
    const __m512d d = _mm512_sub_pd(x, c);
    return _mm512_mul_pd(d, d);
  } else {
    return _mm512_mul_pd(x, _mm512_sub_pd(_mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(b)), c));
  }
}

template <Term kTerm>
__attribute__((target("avx512f"))) double channel_sum_avx512(const float* a, int64_t a_stride,
                                                             const float* b, int64_t b_stride,
                                                             double center, int64_t n,
                                                             int64_t spatial, double total) {
  const __m512d c = _mm512_set1_pd(center);
  for (int64_t i = 0; i < n; i += kRows) {
    const float* ar[kRows];
    const float* br[kRows];
    const int rows = row_block(ar, br, a, a_stride, b, b_stride, i, n);
    __m512d acc[kRows];
    for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_pd();
    int64_t s = 0;
    for (; s + kLanes <= spatial; s += kLanes)
      for (int r = 0; r < kRows; ++r)
        acc[r] = _mm512_add_pd(acc[r], term8<kTerm>(ar[r] + s, br[r] ? br[r] + s : nullptr, c));
    for (int r = 0; r < rows; ++r) {
      alignas(64) double l[kLanes];
      _mm512_store_pd(l, acc[r]);
      double v = combine_lanes(l);
      for (int64_t t = s; t < spatial; ++t) v += term_of<kTerm>(ar[r], br[r], center, t);
      total += v;
    }
  }
  return total;
}

// add_backward_sums' two channel sums, sum(dy) and sum(dy * (x - center)), in one pass over
// the rows of dy and x: each keeps its own partial sums per row in channel_sum_avx512's order,
// so the bits of the two separate calls, with dy read once. The next kRows rows of x (of
// these n and the x_after that follow) are asked for a line at a time along the way: rows a
// stride apart, from memory, which the hardware prefetchers do not follow.
__attribute__((target("avx512f"))) inline void add_backward_sums_avx512(
    double& sum_dy, double& sum_dy_xc, const float* dy, int64_t d_stride, const float* x,
    int64_t x_stride, double center, int64_t n, int64_t spatial, int64_t x_after) {
  const __m512d c = _mm512_set1_pd(center);
  for (int64_t i = 0; i < n; i += kRows) {
    const float* dr[kRows];
    const float* xr[kRows];
    const int rows = row_block(dr, xr, dy, d_stride, x, x_stride, i, n);
    const int64_t ahead = std::min<int64_t>(kRows, n + x_after - i - kRows);
    __m512d acc_dy[kRows], acc_xc[kRows];
    for (int r = 0; r < kRows; ++r) acc_dy[r] = acc_xc[r] = _mm512_setzero_pd();
    int64_t s = 0;
    for (; s + kLanes <= spatial; s += kLanes)
      for (int r = 0; r < kRows; ++r) {
        if (r < ahead && s % 16 == 0)
          _mm_prefetch(reinterpret_cast<const char*>(x + (i + kRows + r) * x_stride + s),
                       _MM_HINT_T0);
        const __m512d g = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(dr[r] + s));
        const __m512d v = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(xr[r] + s));
        acc_dy[r] = _mm512_add_pd(acc_dy[r], g);
        acc_xc[r] = _mm512_add_pd(acc_xc[r], _mm512_mul_pd(g, _mm512_sub_pd(v, c)));
      }
    for (int r = 0; r < rows; ++r) {
      alignas(64) double l[kLanes];
      _mm512_store_pd(l, acc_dy[r]);
      double v_dy = combine_lanes(l);
      _mm512_store_pd(l, acc_xc[r]);
      double v_xc = combine_lanes(l);
      for (int64_t t = s; t < spatial; ++t) {
        v_dy += term_of<Term::kValue>(dr[r], xr[r], center, t);
        v_xc += term_of<Term::kProduct>(dr[r], xr[r], center, t);
      }
      sum_dy += v_dy;
      sum_dy_xc += v_xc;
    }
  }
}

// affine_rows' and backward_train_channel's element-wise rows with AVX-512: the same
// operations in the same order per value (no fused multiply-add), so the same bits. The
// affine row asks for next_y's lines as it goes (the next row to write, a stride away; null
// for none).
__attribute__((target("avx512f"))) inline void affine_row_avx512(float* y, const float* x,
                                                                 float center, float scale,
                                                                 float shift, int64_t len,
                                                                 bool relu, const float* next_y) {
  const __m512 c = _mm512_set1_ps(center), sc = _mm512_set1_ps(scale), sh = _mm512_set1_ps(shift);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t s = 0; s < len; s += 16) {
    if (next_y) __builtin_prefetch(next_y + s, 1, 3);
    const __mmask16 m = len - s >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (len - s)) - 1u);
    __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + s), c);
    v = _mm512_add_ps(_mm512_mul_ps(v, sc), sh);
    if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
    _mm512_mask_storeu_ps(y + s, m, v);
  }
}

__attribute__((target("avx512f"))) inline void backward_row_avx512(float* dx, const float* dy,
                                                                   const float* x, float k, float a,
                                                                   float b, float mean,
                                                                   int64_t len) {
  const __m512 vk = _mm512_set1_ps(k), va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  const __m512 vm = _mm512_set1_ps(mean);
  for (int64_t s = 0; s < len; s += 16) {
    const __mmask16 m = len - s >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (len - s)) - 1u);
    const __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, dy + s), va);
    const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + s), vm), vb);
    _mm512_mask_storeu_ps(dx + s, m, _mm512_mul_ps(vk, _mm512_sub_ps(g, d)));
  }
}

#endif

// total plus the sums, added in row order, over a channel's N rows of lane_sum over each row
// of term_of: row i of a at a + i * a_stride, of b (kProduct only) at b + i * b_stride. A
// channel summed in parts, each part's total passed to the next, has the bits of one call.
template <Term kTerm, typename T>
double channel_sum(const T* a, int64_t a_stride, const T* b, int64_t b_stride, double center,
                   int64_t n, int64_t spatial, double total = 0) {
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_same_v<T, float>) {  // the instruction set the kernels use (gemm.h)
    const VectorPath path = vector_path();
    if (path == VectorPath::kAvx512)
      return channel_sum_avx512<kTerm>(a, a_stride, b, b_stride, center, n, spatial, total);
    if (path == VectorPath::kAvx2)
      return channel_sum_avx2<kTerm>(a, a_stride, b, b_stride, center, n, spatial, total);
  }
#endif
  for (int64_t i = 0; i < n; ++i) {
    const T* ar = a + i * a_stride;
    const T* br = b ? b + i * b_stride : nullptr;
    total += lane_sum(spatial, [&](int64_t s) { return term_of<kTerm>(ar, br, center, s); });
  }
  return total;
}

// Adds to sum_dy and sum_dy_xc (as channel_sum to its total) the two sums a channel's
// backward needs: sum(d_out) and sum(d_out * (in - center)). in_after: how many rows of in
// follow the n at the same stride (the caller's next call), to be read from memory ahead.
template <typename T>
void add_backward_sums(double& sum_dy, double& sum_dy_xc, const T* d_out, int64_t d_stride,
                       const T* in, int64_t in_stride, double center, int64_t n, int64_t spatial,
                       int64_t in_after = 0) {
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_same_v<T, float>) {
    if (vector_path() == VectorPath::kAvx512)
      return add_backward_sums_avx512(sum_dy, sum_dy_xc, d_out, d_stride, in, in_stride, center, n,
                                      spatial, in_after);
  }
#else
  (void)in_after;
#endif
  sum_dy = channel_sum<Term::kValue, T>(d_out, d_stride, nullptr, 0, 0.0, n, spatial, sum_dy);
  sum_dy_xc =
      channel_sum<Term::kProduct, T>(d_out, d_stride, in, in_stride, center, n, spatial, sum_dy_xc);
}

// The batch statistics of one channel, rows at in + i * stride: *mean, *var (biased) and
// *invstd = 1 / sqrt(var + eps), computed in double in two passes (the mean, then the squared
// deviations from it: no cancellation). Returns the forward's factor gamma * invstd, rounded
// once from double.
template <typename T>
T train_statistics(T* mean, T* var, T* invstd, const T* in, int64_t stride, T gamma, int64_t n,
                   int64_t spatial, double eps) {
  const double count = static_cast<double>(n * spatial);
  const double m = channel_sum<Term::kValue, T>(in, stride, nullptr, 0, 0.0, n, spatial) / count;
  const double v = channel_sum<Term::kSquare, T>(in, stride, nullptr, 0, m, n, spatial) / count;
  const double is = 1.0 / std::sqrt(v + eps);
  *mean = static_cast<T>(m);
  *var = static_cast<T>(v);
  *invstd = static_cast<T>(is);
  return static_cast<T>(static_cast<double>(gamma) * is);
}

// out = (in - center) * scale + shift over one channel's N rows (with relu, max(that, 0)).
template <typename T>
void affine_rows(T* out, const T* in, T center, T scale, T shift, int64_t n, int64_t stride,
                 int64_t spatial, bool relu = false) {
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_same_v<T, float>) {
    if (vector_path() == VectorPath::kAvx512) {
      for (int64_t i = 0; i < n; ++i)
        affine_row_avx512(out + i * stride, in + i * stride, center, scale, shift, spatial, relu,
                          i + 1 < n ? out + (i + 1) * stride : nullptr);
      return;
    }
  }
#endif
  for (int64_t i = 0; i < n; ++i) {
    const T* x = in + i * stride;
    T* y = out + i * stride;
    if (relu) {
      for (int64_t s = 0; s < spatial; ++s) {
        const T v = (x[s] - center) * scale + shift;
        y[s] = v < T(0) ? T(0) : v;  // as relu_forward
      }
    } else {
      for (int64_t s = 0; s < spatial; ++s) y[s] = (x[s] - center) * scale + shift;
    }
  }
}

// What the training backward of one channel needs besides its rows:
// d_in = k * (d_out - a - (x - mean) * b).
template <typename T>
struct ChannelGrad {
  T k, a, b;
};

// backward_coefficients from add_backward_sums' two sums over `count` values.
template <typename T>
ChannelGrad<T> coefficients_from_sums(T* d_gamma, T* d_beta, double sum_dy, double sum_dy_xc,
                                      T invstd, T gamma, int64_t count) {
  const double is = static_cast<double>(invstd), total = static_cast<double>(count);
  if (d_beta) *d_beta += static_cast<T>(sum_dy);
  if (d_gamma) *d_gamma += static_cast<T>(sum_dy_xc * is);
  return {static_cast<T>(static_cast<double>(gamma) * is), static_cast<T>(sum_dy / total),
          static_cast<T>(sum_dy_xc * is * is / total)};
}

// The first half of the training backward of one channel (batch_norm_backward_train), its
// gradient rows at d_out + i * d_stride and its input rows at in + i * stride: adds to
// *d_beta and *d_gamma (either may be null) and returns k = gamma * invstd, a = mean(d_out)
// and b = mean(d_out * x_hat) * invstd.
template <typename T>
ChannelGrad<T> backward_coefficients(T* d_gamma, T* d_beta, const T* d_out, int64_t d_stride,
                                     const T* in, int64_t stride, T mean, T invstd, T gamma,
                                     int64_t n, int64_t spatial) {
  double sum_dy = 0, sum_dy_xc = 0;
  add_backward_sums(sum_dy, sum_dy_xc, d_out, d_stride, in, stride, static_cast<double>(mean), n,
                    spatial);
  return coefficients_from_sums(d_gamma, d_beta, sum_dy, sum_dy_xc, invstd, gamma, n * spatial);
}

// The second half: d_in's n rows (at d_in + i * d_in_stride) = k * (d_out - a - (x - mean) * b).
template <typename T>
void backward_rows(T* d_in, int64_t d_in_stride, const T* d_out, int64_t d_stride, const T* in,
                   int64_t stride, T mean, const ChannelGrad<T>& g, int64_t n, int64_t spatial) {
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_same_v<T, float>) {
    if (vector_path() == VectorPath::kAvx512) {
      for (int64_t i = 0; i < n; ++i)
        backward_row_avx512(d_in + i * d_in_stride, d_out + i * d_stride, in + i * stride, g.k, g.a,
                            g.b, mean, spatial);
      return;
    }
  }
#endif
  for (int64_t i = 0; i < n; ++i) {
    const T* dy = d_out + i * d_stride;
    const T* x = in + i * stride;
    T* dx = d_in + i * d_in_stride;
    for (int64_t s = 0; s < spatial; ++s) dx[s] = g.k * ((dy[s] - g.a) - (x[s] - mean) * g.b);
  }
}

// The training backward of one channel: both halves, d_in's rows at d_in + i * d_in_stride.
template <typename T>
void backward_train_channel(T* d_in, int64_t d_in_stride, T* d_gamma, T* d_beta, const T* d_out,
                            int64_t d_stride, const T* in, int64_t stride, T mean, T invstd,
                            T gamma, int64_t n, int64_t spatial) {
  const ChannelGrad<T> g = backward_coefficients(d_gamma, d_beta, d_out, d_stride, in, stride, mean,
                                                 invstd, gamma, n, spatial);
  backward_rows(d_in, d_in_stride, d_out, d_stride, in, stride, mean, g, n, spatial);
}

}  // namespace scratchnet::batch_norm_sums
