#include "scratchnet/layers/max_pool2d.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "../kernels/transpose_avx512.h"
#endif

#include "scratchnet/check.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

// Each (n, c) plane is independent, so planes are split across threads. For one output the
// window is clipped to the input (Pool2dDims::window): the -inf padding can
// never win, and with padding <= K/2 the clipped window is never empty. The scan starts at
// -inf with the first real element as the provisional winner and takes strictly greater
// values (or NaN), which keeps the first maximum in row-major order, as PyTorch does.
#if defined(__x86_64__) || defined(_M_X64)

namespace {

bool has_avx512() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return yes;
}

// The common 2x2 window with stride 2 and no padding, 16 outputs at a time: the even and odd
// columns of two input rows are split into four vectors a, b (row 2y) and c, d (row 2y + 1),
// then scanned in window order a, b, c, d with the same rule as the scalar loop (take strictly
// greater or NaN), so values and argmax are identical to it. The stores write all 16 lanes
// where those stay in the plane (masked stores cost more): the lanes past a row's end are
// outputs that the next stores write again.
// The input is asked for six row pairs ahead (two were too few to hide memory's latency),
// running on into `next` (the plane after, or null).
__attribute__((target("avx512f"))) void max_pool_2x2_plane(float* dst, int32_t* win,
                                                           const float* src, const float* next,
                                                           const Pool2dDims& d) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t oy = 0; oy < d.oh; ++oy) {
    simd::prefetch_ahead(src, next, (2 * oy + 12) * d.w, 2 * d.w, d.h * d.w);
    const float* r0 = src + 2 * oy * d.w;
    const float* r1 = r0 + d.w;
    for (int64_t ox = 0; ox < d.ow; ox += 16) {
      const int64_t n = std::min<int64_t>(16, d.ow - ox), cols = 2 * n;
      const __mmask16 lo = static_cast<__mmask16>(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
      const __mmask16 hi = static_cast<__mmask16>(cols <= 16 ? 0 : (1u << (cols - 16)) - 1u);
      const __mmask16 out_mask = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u);
      const float* p0 = r0 + 2 * ox;
      const float* p1 = r1 + 2 * ox;
      const __m512 x0 = _mm512_maskz_loadu_ps(lo, p0), x1 = _mm512_maskz_loadu_ps(hi, p0 + 16);
      const __m512 y0 = _mm512_maskz_loadu_ps(lo, p1), y1 = _mm512_maskz_loadu_ps(hi, p1 + 16);
      const __m512 v[4] = {
          _mm512_permutex2var_ps(x0, even, x1), _mm512_permutex2var_ps(x0, odd, x1),
          _mm512_permutex2var_ps(y0, even, y1), _mm512_permutex2var_ps(y0, odd, y1)};
      const int32_t base = static_cast<int32_t>(2 * oy * d.w + 2 * ox);
      const int32_t step[4] = {0, 1, static_cast<int32_t>(d.w), static_cast<int32_t>(d.w + 1)};
      __m512 best = v[0];
      __m512i at = _mm512_add_epi32(_mm512_set1_epi32(base), even);
      for (int t = 1; t < 4; ++t) {
        const __mmask16 take = _mm512_cmp_ps_mask(v[t], best, _CMP_GT_OQ) |
                               _mm512_cmp_ps_mask(v[t], v[t], _CMP_UNORD_Q);
        best = _mm512_mask_mov_ps(best, take, v[t]);
        at = _mm512_mask_mov_epi32(at, take,
                                   _mm512_add_epi32(_mm512_set1_epi32(base + step[t]), even));
      }
      const int64_t o = oy * d.ow + ox;
      if (o + 16 <= d.oh * d.ow) {  // lanes past the row land on outputs stored later
        _mm512_storeu_ps(dst + o, best);
        if (win) _mm512_storeu_si512(win + o, at);
      } else {
        _mm512_mask_storeu_ps(dst + o, out_mask, best);
        if (win) _mm512_mask_storeu_epi32(win + o, out_mask, at);
      }
    }
  }
}

// Its backward, 8 outputs (16 input columns) at a time: each output's gradient and argmax go
// to both lanes of its window's columns, and each input lane keeps the gradient where the
// argmax names it. Windows do not overlap, so an input gets at most one output's gradient:
// 0 + g, as the scalar loop adds it (the + 0 turns -0 into +0 as that does). Rows and columns
// no window covers (odd H or W) are zero. False, with d_in unfinished, when some argmax lies
// outside its window (never so from the forward): each output then matched no lane.
// The output rows are asked for (to be written) two row pairs ahead, running on into `next`,
// and with `next`, the next plane's d_out and argmax (which follow these) one plane ahead.
__attribute__((target("avx512f"))) bool max_pool_2x2_backward_plane(float* d_in, const float* d_out,
                                                                    const int32_t* argmax,
                                                                    const float* next,
                                                                    const Pool2dDims& d) {
  const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 zero = _mm512_setzero_ps();
  int64_t matched = 0;
  for (int64_t oy = 0; oy < d.oh; ++oy) {
    simd::prefetch_ahead<true>(d_in, next, (2 * oy + 4) * d.w, 2 * d.w, d.h * d.w);
    const float* g = d_out + oy * d.ow;
    const int32_t* at = argmax + oy * d.ow;
    if (next) {
      simd::prefetch_lines(g + d.oh * d.ow, d.ow);
      simd::prefetch_lines(at + d.oh * d.ow, d.ow);
    }
    for (int64_t x = 0; x < d.w; x += 16) {  // input columns [x, x + 16) of rows 2oy, 2oy + 1
      const int64_t ox = x / 2;
      const __mmask16 outs = simd::lanes_mask(std::clamp<int64_t>(d.ow - ox, 0, 8));
      const __mmask16 cols = simd::lanes_mask(d.w - x);
      // maskz forms: the plain permutes trip a false maybe-uninitialized warning in GCC 12.
      const __m512 gv =
          _mm512_maskz_permutexvar_ps(0xFFFF, pairs, _mm512_maskz_loadu_ps(outs, g + ox));
      const __m512i av = _mm512_maskz_permutexvar_epi32(
          0xFFFF, pairs, _mm512_mask_loadu_epi32(_mm512_set1_epi32(-1), outs, at + ox));
      for (int64_t dy = 0; dy < 2; ++dy) {
        const int64_t row = (2 * oy + dy) * d.w + x;
        const __mmask16 won = _mm512_cmpeq_epi32_mask(
            av, _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(row)), lanes));
        _mm512_mask_storeu_ps(d_in + row, cols, _mm512_add_ps(_mm512_maskz_mov_ps(won, gv), zero));
        matched += __builtin_popcount(won);
      }
    }
  }
  std::fill(d_in + 2 * d.oh * d.w, d_in + d.h * d.w, 0.0f);
  return matched == d.oh * d.ow;
}

}  // namespace

#endif

namespace {

// max_pool2d_forward_plane, with `next` the plane the caller pools next (or null).
template <typename T>
void forward_plane(T* out, int32_t* argmax, const T* in, const T* next, const Pool2dDims& d) {
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_same_v<T, float>) {
    if (d.k == 2 && d.stride == 2 && d.padding == 0 && has_avx512())
      return max_pool_2x2_plane(out, argmax, in, next, d);
  }
#else
  (void)next;
#endif
  for (int64_t oy = 0; oy < d.oh; ++oy) {
    for (int64_t ox = 0; ox < d.ow; ++ox) {
      const Pool2dDims::Window win = d.window(oy, ox);
      T best = -std::numeric_limits<T>::infinity();
      int64_t best_at = win.y0 * d.w + win.x0;
      for (int64_t y = win.y0; y < win.y1; ++y) {
        const T* row = in + y * d.w;
        for (int64_t x = win.x0; x < win.x1; ++x) {
          if (row[x] > best || std::isnan(row[x])) {
            best = row[x];
            best_at = y * d.w + x;
          }
        }
      }
      out[oy * d.ow + ox] = best;
      if (argmax) argmax[oy * d.ow + ox] = static_cast<int32_t>(best_at);
    }
  }
}

// d_in = 0, then each d_out value is added at the position that won its window, in output
// order. `next`: the plane of d_in the caller writes next (or null).
template <typename T>
void backward_plane(T* d_in, const T* d_out, const int32_t* argmax, const T* next,
                    const Pool2dDims& d) {
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_same_v<T, float>) {
    if (d.k == 2 && d.stride == 2 && d.padding == 0 && has_avx512() &&
        max_pool_2x2_backward_plane(d_in, d_out, argmax, next, d))
      return;
  }
#else
  (void)next;
#endif
  std::fill(d_in, d_in + d.h * d.w, T(0));
  for (int64_t o = 0; o < d.oh * d.ow; ++o) d_in[argmax[o]] += d_out[o];
}

}  // namespace

template <typename T>
void max_pool2d_forward_plane(T* out, int32_t* argmax, const T* in, const Pool2dDims& d) {
  forward_plane(out, argmax, in, static_cast<const T*>(nullptr), d);
}

template <typename T>
void max_pool2d_backward_plane(T* d_in, const T* d_out, const int32_t* argmax,
                               const Pool2dDims& d) {
  backward_plane(d_in, d_out, argmax, static_cast<const T*>(nullptr), d);
}

template <typename T>
void max_pool2d_forward(T* out, int32_t* argmax, const T* in, const Pool2dDims& d) {
  const int64_t plane_in = d.h * d.w, plane_out = d.oh * d.ow;
  parallel_for(d.n * d.c, parallel_grain(plane_in), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p)
      forward_plane(out + p * plane_out, argmax ? argmax + p * plane_out : nullptr,
                    in + p * plane_in, p + 1 < end ? in + (p + 1) * plane_in : nullptr, d);
  });
}

// Within a plane the additions run in output order, so the sums are the same for any thread
// count.
template <typename T>
void max_pool2d_backward(T* d_in, const T* d_out, const int32_t* argmax, const Pool2dDims& d) {
  const int64_t plane_in = d.h * d.w, plane_out = d.oh * d.ow;
  parallel_for(d.n * d.c, parallel_grain(plane_in), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p)
      backward_plane(d_in + p * plane_in, d_out + p * plane_out, argmax + p * plane_out,
                     p + 1 < end ? d_in + (p + 1) * plane_in : nullptr, d);
  });
}

template void max_pool2d_forward_plane<float>(float*, int32_t*, const float*, const Pool2dDims&);
template void max_pool2d_backward_plane<float>(float*, const float*, const int32_t*,
                                               const Pool2dDims&);
template void max_pool2d_forward<float>(float*, int32_t*, const float*, const Pool2dDims&);
template void max_pool2d_forward<double>(double*, int32_t*, const double*, const Pool2dDims&);
template void max_pool2d_backward<float>(float*, const float*, const int32_t*, const Pool2dDims&);
template void max_pool2d_backward<double>(double*, const double*, const int32_t*,
                                          const Pool2dDims&);

MaxPool2d::MaxPool2d(const MaxPool2dOptions& options) : options_(options) {
  check_pool2d_options(kind(), options.kernel, options.stride, options.padding);
  if (options_.stride == 0) options_.stride = options_.kernel;
}

Pool2dDims MaxPool2d::dims(const Shape& in) const {
  Pool2dDims d = pool2d_dims(kind(), in, options_.kernel, options_.stride, options_.padding);
  if (d.h * d.w > std::numeric_limits<int32_t>::max())
    fail_input_shape(kind(),
                     fmt::format("H * W at most {} (argmax positions are 32-bit)",
                                 std::numeric_limits<int32_t>::max()),
                     in);
  return d;
}

Shape MaxPool2d::output_shape(const Shape& in) const {
  Pool2dDims d = dims(in);
  return {d.n, d.c, d.oh, d.ow};
}

int32_t* MaxPool2d::plan_argmax(const Shape& in) {
  argmax_.resize(static_cast<size_t>(shape_numel(output_shape(in))));  // keeps its storage
  argmax_input_shape_ = in;
  return argmax_.data();
}

const int32_t* MaxPool2d::saved_argmax(const Shape& in) const {
  SN_CHECK(argmax_input_shape_ == in,
           "MaxPool2d: backward needs a forward on an input of shape {} first, the last forward "
           "saw {}",
           shape_str(in), argmax_input_shape_.empty() ? "none" : shape_str(argmax_input_shape_));
  return argmax_.data();
}

void MaxPool2d::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  Pool2dDims d = dims(in.shape());
  check_shape(out, {d.n, d.c, d.oh, d.ow}, "MaxPool2d output");
  max_pool2d_forward(out.data(), plan_argmax(in.shape()), in.data(), d);
}

bool MaxPool2d::forward_relu(Tensor& out, const Tensor& in, Mode mode) {
  if (mode == Mode::kTrain) {
    forward(out, in, mode);
  } else {  // no argmax
    Pool2dDims d = dims(in.shape());
    check_shape(out, {d.n, d.c, d.oh, d.ow}, "MaxPool2d output");
    max_pool2d_forward(out.data(), static_cast<int32_t*>(nullptr), in.data(), d);
  }
  ReLU().forward(out, out, mode);  // in place
  return true;
}

void MaxPool2d::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in,
                         const Tensor& /*out*/) {
  const int32_t* argmax = saved_argmax(in.shape());
  Pool2dDims d = dims(in.shape());
  check_shape(d_out, {d.n, d.c, d.oh, d.ow}, "MaxPool2d d_out");
  check_shape(d_in, in.shape(), "MaxPool2d d_in");
  max_pool2d_backward(d_in.data(), d_out.data(), argmax, d);
}

std::string MaxPool2d::describe() const {
  return fmt::format("MaxPool2d(kernel={}, stride={}, padding={})", options_.kernel,
                     options_.stride, options_.padding);
}

int64_t MaxPool2d::flops(const Shape& in) const {
  Pool2dDims d = dims(in);
  return d.n * d.c * d.oh * d.ow * (d.k * d.k - 1);
}

}  // namespace scratchnet
