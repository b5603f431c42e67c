// Conv2d: options, shape inference, the layer and the reference kernels (the fast float
// kernels Conv2d runs are in src/kernels/conv2d_*.cpp).
//
// The kernels read a zero-padded copy of the input, so no inner loop tests bounds.
//
// Stride 1 (the common case) treats each padded plane as one long row. With padded width wp,
// output pixel (y, x) is element t = y*wp + x of a "wide" output plane whose columns x >= OW
// are scratch, and kernel tap (i, j) reads the input at t + i*wp + j. An output plane is then
// a sum of K*K shifted, scaled copies of each input plane: long contiguous loops that
// vectorise. Larger strides compute each output row from strided input rows.
//
// The input gradient is a stride-1 convolution too:
//   d_in[c, u, v] = sum_{oc, i, j} weight[oc, c, K-1-i, K-1-j] * g[oc, u + i, v + j]
// where g is d_out dilated by the stride (stride-1 zeros between elements) and placed at
// offset K-1-padding in a zero (OC, H+K-1, W+K-1) buffer. The weight gradient is a dot
// product per tap: d_weight[oc, c, i, j] = sum_{n, y, x} d_out[n, oc, y, x] *
// in_padded[n, c, y*stride + i, x*stride + j].
#include "scratchnet/layers/conv2d.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "../kernels/conv2d_kernels.h"
#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {

// Per-thread scratch buffers, reused across calls so a training loop does not allocate.
// The calling thread also runs a chunk of each parallel_for, so buffers filled before a
// parallel_for and read inside it (kPadded, kFlipped) have slots of their own.
enum Slot { kPadded, kFlipped, kGradPadded, kAcc, kGradWide, kWeightSum, kNumSlots };

template <typename T>
T* scratch(Slot slot, int64_t size) {
  thread_local std::vector<T> buffers[kNumSlots];
  std::vector<T>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < size) b.resize(static_cast<size_t>(size));
  return b.data();
}

}  // namespace

void conv2d_check_dims(const Conv2dDims& d, const char* fn) {
  bool ok = d.n >= 0 && d.c >= 1 && d.h >= 1 && d.w >= 1 && d.oc >= 1 && d.k >= 1 &&
            d.stride >= 1 && d.padding >= 0 && d.h + 2 * d.padding >= d.k &&
            d.w + 2 * d.padding >= d.k && d.oh == (d.h + 2 * d.padding - d.k) / d.stride + 1 &&
            d.ow == (d.w + 2 * d.padding - d.k) / d.stride + 1;
  SN_CHECK(ok,
           "{}: inconsistent dims: input ({}, {}, {}, {}), output ({}, {}, {}, {}), kernel {}, "
           "stride {}, padding {}",
           fn, d.n, d.c, d.h, d.w, d.n, d.oc, d.oh, d.ow, d.k, d.stride, d.padding);
}

namespace {

// The input zero-padded to (N, C, H + 2*padding, W + 2*padding); `in` itself when padding is 0.
template <typename T>
const T* padded_input(const T* in, const Conv2dDims& d) {
  if (d.padding == 0) return in;
  int64_t p = d.padding, hp = d.h + 2 * p, wp = d.w + 2 * p;
  T* xp = scratch<T>(kPadded, d.n * d.c * hp * wp);  // (N, C, HP, WP)
  parallel_for(d.n, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin * d.c; plane < end * d.c; ++plane) {
      T* dst = xp + plane * hp * wp;
      const T* src = in + plane * d.h * d.w;
      std::fill(dst, dst + p * wp, T(0));
      for (int64_t y = 0; y < d.h; ++y) {
        T* row = dst + (p + y) * wp;
        std::fill(row, row + p, T(0));
        std::copy(src + y * d.w, src + (y + 1) * d.w, row + p);
        std::fill(row + p + d.w, row + wp, T(0));
      }
      std::fill(dst + (p + d.h) * wp, dst + hp * wp, T(0));
    }
  });
  return xp;
}

// acc[t] += sum_{i, j} w[i, j] * x[t + i*row + j] for t in [0, len); w (K, K).
// KK > 0 fixes K at compile time so the taps unroll and acc is loaded and stored once.
template <typename T, int KK>
void add_taps(T* __restrict acc, const T* __restrict x, const T* __restrict w, int64_t len,
              int64_t row, int64_t k) {
  if constexpr (KK > 0) {
    for (int64_t t = 0; t < len; ++t) {
      T s = acc[t];
      for (int i = 0; i < KK; ++i)
        for (int j = 0; j < KK; ++j) s += w[i * KK + j] * x[t + i * row + j];
      acc[t] = s;
    }
  } else {
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        T wv = w[i * k + j];
        const T* xs = x + i * row + j;
        for (int64_t t = 0; t < len; ++t) acc[t] += wv * xs[t];
      }
  }
}

template <typename T>
void add_taps_any(T* acc, const T* x, const T* w, int64_t len, int64_t row, int64_t k) {
  switch (k) {
    case 1:
      return add_taps<T, 1>(acc, x, w, len, row, k);
    case 2:
      return add_taps<T, 2>(acc, x, w, len, row, k);
    case 3:
      return add_taps<T, 3>(acc, x, w, len, row, k);
    case 5:
      return add_taps<T, 5>(acc, x, w, len, row, k);
    default:
      return add_taps<T, 0>(acc, x, w, len, row, k);
  }
}

// One sample, stride 1, no padding:
// out (OC, HX-K+1, WX-K+1) = bias + x (C, HX, WX) correlated with w (OC, C, K, K).
// bias (OC) may be null.
template <typename T>
void conv_sample_stride1(T* out, const T* x, const T* w, const T* bias, int64_t c, int64_t oc,
                         int64_t hx, int64_t wx, int64_t k) {
  int64_t oh = hx - k + 1, ow = wx - k + 1;
  int64_t len = (oh - 1) * wx + ow;
  T* acc = scratch<T>(kAcc, len);  // (OH, WX) wide rows, columns >= OW unused
  for (int64_t o = 0; o < oc; ++o) {
    std::fill(acc, acc + len, bias ? bias[o] : T(0));
    for (int64_t ci = 0; ci < c; ++ci)
      add_taps_any(acc, x + ci * hx * wx, w + (o * c + ci) * k * k, len, wx, k);
    T* dst = out + o * oh * ow;
    for (int64_t y = 0; y < oh; ++y) std::copy(acc + y * wx, acc + y * wx + ow, dst + y * ow);
  }
}

// One sample, any stride: out (OC, OH, OW) from the padded sample xp (C, HP, WP).
template <typename T>
void conv_sample_strided(T* out, const T* xp, const T* w, const T* bias, const Conv2dDims& d) {
  int64_t s = d.stride, k = d.k, hp = d.h + 2 * d.padding, wp = d.w + 2 * d.padding;
  for (int64_t o = 0; o < d.oc; ++o)
    for (int64_t y = 0; y < d.oh; ++y) {
      T* row = out + (o * d.oh + y) * d.ow;  // (OW)
      std::fill(row, row + d.ow, bias ? bias[o] : T(0));
      for (int64_t ci = 0; ci < d.c; ++ci)
        for (int64_t i = 0; i < k; ++i) {
          const T* xr = xp + (ci * hp + y * s + i) * wp;   // (WP)
          const T* wr = w + ((o * d.c + ci) * k + i) * k;  // (K)
          for (int64_t j = 0; j < k; ++j) {
            T wv = wr[j];
            for (int64_t x = 0; x < d.ow; ++x) row[x] += wv * xr[x * s + j];
          }
        }
    }
}

// sum_t a[t] * b[t], accumulated in 8 interleaved partial sums (vectorisable, fixed order).
template <typename T>
T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  constexpr int kLanes = 8;
  T part[kLanes] = {};
  int64_t t = 0;
  for (; t + kLanes <= n; t += kLanes)
    for (int l = 0; l < kLanes; ++l) part[l] += a[t + l] * b[t + l];
  for (int l = 0; t < n; ++t, ++l) part[l] += a[t] * b[t];
  T s = 0;
  for (int l = 0; l < kLanes; ++l) s += part[l];
  return s;
}

template <typename T>
void input_gradient(T* d_in, const T* d_out, const T* weight, const Conv2dDims& d) {
  int64_t k = d.k, s = d.stride, q = d.k - 1 - d.padding;
  int64_t hg = d.h + k - 1, wg = d.w + k - 1;
  // (C, OC, K, K): the kernel flipped in both spatial axes, channel axes swapped.
  T* wf = scratch<T>(kFlipped, d.c * d.oc * k * k);
  for (int64_t o = 0; o < d.oc; ++o)
    for (int64_t ci = 0; ci < d.c; ++ci)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j)
          wf[((ci * d.oc + o) * k + (k - 1 - i)) * k + (k - 1 - j)] =
              weight[((o * d.c + ci) * k + i) * k + j];
  // Output rows y with 0 <= q + y*s < hg (columns likewise); q < 0 when padding >= K drops
  // outputs that saw only padding. q + y*s <= hg - 1  <=>  y*s <= H - 1 + padding.
  int64_t y0 = q < 0 ? (-q + s - 1) / s : 0, y1 = std::min(d.oh, (d.h - 1 + d.padding) / s + 1);
  int64_t x0 = q < 0 ? (-q + s - 1) / s : 0, x1 = std::min(d.ow, (d.w - 1 + d.padding) / s + 1);
  parallel_for(d.n, [&](int64_t begin, int64_t end) {
    T* g = scratch<T>(kGradPadded, d.oc * hg * wg);  // (OC, H+K-1, W+K-1)
    std::fill(g, g + d.oc * hg * wg, T(0));
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t o = 0; o < d.oc; ++o) {
        const T* src = d_out + (n * d.oc + o) * d.oh * d.ow;  // (OH, OW)
        T* dst = g + o * hg * wg;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) dst[(q + y * s) * wg + q + x * s] = src[y * d.ow + x];
      }
      conv_sample_stride1(d_in + n * d.c * d.h * d.w, g, wf, static_cast<const T*>(nullptr), d.oc,
                          d.c, hg, wg, k);
    }
  });
}

template <typename T>
void param_gradients(T* d_weight, T* d_bias, const T* d_out, const T* in, const Conv2dDims& d) {
  int64_t k = d.k, s = d.stride, hp = d.h + 2 * d.padding, wp = d.w + 2 * d.padding;
  int64_t ckk = d.c * k * k, plane = d.oh * d.ow;
  const T* xp = d_weight ? padded_input(in, d) : nullptr;  // (N, C, HP, WP)
  parallel_for(d.oc, [&](int64_t begin, int64_t end) {
    T* dw = scratch<T>(kWeightSum, ckk);  // (C, K, K) for one output channel
    int64_t len = (d.oh - 1) * wp + d.ow;
    T* gw = s == 1 ? scratch<T>(kGradWide, d.oh * wp) : nullptr;  // (OH, WP), zero cols >= OW
    if (gw) std::fill(gw, gw + d.oh * wp, T(0));
    for (int64_t o = begin; o < end; ++o) {
      std::fill(dw, dw + ckk, T(0));
      T db = 0;
      for (int64_t n = 0; n < d.n; ++n) {
        const T* g = d_out + (n * d.oc + o) * plane;  // (OH, OW)
        if (d_bias)
          for (int64_t t = 0; t < plane; ++t) db += g[t];
        if (!d_weight) continue;
        const T* xn = xp + n * d.c * hp * wp;  // (C, HP, WP)
        if (gw) {
          for (int64_t y = 0; y < d.oh; ++y)
            std::copy(g + y * d.ow, g + (y + 1) * d.ow, gw + y * wp);
          for (int64_t ci = 0; ci < d.c; ++ci)
            for (int64_t i = 0; i < k; ++i)
              for (int64_t j = 0; j < k; ++j)
                dw[(ci * k + i) * k + j] += dot(gw, xn + (ci * hp + i) * wp + j, len);
        } else {
          for (int64_t ci = 0; ci < d.c; ++ci)
            for (int64_t i = 0; i < k; ++i)
              for (int64_t j = 0; j < k; ++j) {
                T sum = 0;
                for (int64_t y = 0; y < d.oh; ++y) {
                  const T* xr = xn + (ci * hp + y * s + i) * wp + j;
                  const T* gr = g + y * d.ow;
                  for (int64_t x = 0; x < d.ow; ++x) sum += gr[x] * xr[x * s];
                }
                dw[(ci * k + i) * k + j] += sum;
              }
        }
      }
      if (d_weight)
        for (int64_t t = 0; t < ckk; ++t) d_weight[o * ckk + t] += dw[t];
      if (d_bias) d_bias[o] += db;
    }
  });
}

}  // namespace

template <typename T>
void conv2d_forward_reference(T* out, const T* in, const T* weight, const T* bias,
                              const Conv2dDims& d) {
  conv2d_check_dims(d, "conv2d_forward_reference");
  int64_t hp = d.h + 2 * d.padding, wp = d.w + 2 * d.padding;
  const T* xp = padded_input(in, d);  // (N, C, HP, WP)
  parallel_for(d.n, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      T* dst = out + n * d.oc * d.oh * d.ow;  // (OC, OH, OW)
      const T* src = xp + n * d.c * hp * wp;  // (C, HP, WP)
      if (d.stride == 1)
        conv_sample_stride1(dst, src, weight, bias, d.c, d.oc, hp, wp, d.k);
      else
        conv_sample_strided(dst, src, weight, bias, d);
    }
  });
}

template <typename T>
void conv2d_backward_reference(T* d_in, T* d_weight, T* d_bias, const T* d_out, const T* in,
                               const T* weight, const Conv2dDims& d) {
  conv2d_check_dims(d, "conv2d_backward_reference");
  if (d_in) input_gradient(d_in, d_out, weight, d);
  if (d_weight || d_bias) param_gradients(d_weight, d_bias, d_out, in, d);
}

template void conv2d_forward_reference<float>(float*, const float*, const float*, const float*,
                                              const Conv2dDims&);
template void conv2d_forward_reference<double>(double*, const double*, const double*, const double*,
                                               const Conv2dDims&);
template void conv2d_backward_reference<float>(float*, float*, float*, const float*, const float*,
                                               const float*, const Conv2dDims&);
template void conv2d_backward_reference<double>(double*, double*, double*, const double*,
                                                const double*, const double*, const Conv2dDims&);

Conv2dDims conv2d_dims(const Conv2dOptions& o, const Shape& in) {
  int64_t k = o.kernel, p = o.padding;
  int64_t min_size = std::max<int64_t>(1, k - 2 * p);
  std::string want = fmt::format("input (N, {}, H, W) with H, W >= {} (kernel {}, padding {})",
                                 o.in_channels, min_size, k, p);
  if (in.size() != 4) fail_input_shape("Conv2d", want, in);
  if (in[1] != o.in_channels)
    fail("Conv2d: expects {} input channels, got {} (input shape {})", o.in_channels, in[1],
         shape_str(in));
  if (in[0] < 0 || in[2] < min_size || in[3] < min_size) fail_input_shape("Conv2d", want, in);
  Conv2dDims d{};
  d.n = in[0];
  d.c = in[1];
  d.h = in[2];
  d.w = in[3];
  d.oc = o.out_channels;
  d.k = k;
  d.stride = o.stride;
  d.padding = p;
  d.oh = (d.h + 2 * p - k) / o.stride + 1;
  d.ow = (d.w + 2 * p - k) / o.stride + 1;
  return d;
}

Conv2d::Conv2d(const Conv2dOptions& options) : options_(options) {
  SN_CHECK(options.in_channels >= 1, "Conv2d: in_channels must be at least 1, got {}",
           options.in_channels);
  SN_CHECK(options.out_channels >= 1, "Conv2d: out_channels must be at least 1, got {}",
           options.out_channels);
  SN_CHECK(options.kernel >= 1, "Conv2d: kernel must be at least 1, got {}", options.kernel);
  SN_CHECK(options.stride >= 1, "Conv2d: stride must be at least 1, got {}", options.stride);
  SN_CHECK(options.padding >= 0, "Conv2d: padding must be at least 0, got {}", options.padding);
  int64_t k = options.kernel;
  weight_ = Parameter({options.out_channels, options.in_channels, k, k});
  if (options.bias) bias_ = Parameter({options.out_channels});
}

Shape Conv2d::output_shape(const Shape& in) const {
  Conv2dDims d = conv2d_dims(options_, in);
  return {d.n, d.oc, d.oh, d.ow};
}

void Conv2d::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  Conv2dDims d = conv2d_dims(options_, in.shape());
  check_shape(out, {d.n, d.oc, d.oh, d.ow}, "Conv2d forward: output");
  conv2d_forward(out.data(), in.data(), weight_.value.data(),
                 options_.bias ? bias_.value.data() : nullptr, d);
}

void Conv2d::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& /*out*/) {
  check_shape(d_in, in.shape(), "Conv2d backward: gradient of the input");
  run_backward(&d_in, d_out, in);
}

void Conv2d::run_backward(Tensor* d_in, const Tensor& d_out, const Tensor& in) {
  Conv2dDims d = conv2d_dims(options_, in.shape());
  check_shape(d_out, {d.n, d.oc, d.oh, d.ow}, "Conv2d backward: gradient of the output");
  conv2d_backward(d_in ? d_in->data() : nullptr, weight_.grad.data(),
                  options_.bias ? bias_.grad.data() : nullptr, d_out.data(), in.data(),
                  weight_.value.data(), d);
}

void Conv2d::backward_fused(Tensor* d_in, const Tensor& d_out, const Tensor& in,
                            const Conv2dBackwardFusion& fusion) {
  Conv2dDims d = conv2d_dims(options_, in.shape());
  check_shape(d_out, {d.n, d.oc, d.oh, d.ow}, "Conv2d backward: gradient of the output");
  if (d_in) check_shape(*d_in, in.shape(), "Conv2d backward: gradient of the input");
  conv2d_backward_fused(d_in ? d_in->data() : nullptr, weight_.grad.data(),
                        options_.bias ? bias_.grad.data() : nullptr, d_out.data(), in.data(),
                        weight_.value.data(), d, fusion);
}

bool Conv2d::has_eval_fused(const Shape& in) const {
  return conv2d_epilogue_ok(conv2d_dims(options_, in));
}

void Conv2d::forward_eval_fused(Tensor& out, const Tensor& in, const Conv2dEpilogue& e) {
  Conv2dDims d = conv2d_dims(options_, in.shape());
  SN_CHECK(conv2d_epilogue_ok(d), "Conv2d: no fused eval forward for an input of shape {}",
           shape_str(in.shape()));
  const int64_t oh = e.pool ? d.oh / 2 : d.oh, ow = e.pool ? d.ow / 2 : d.ow;
  check_shape(out, {d.n, d.oc, oh, ow}, "Conv2d forward: output");
  conv2d_forward_epilogue(out.data(), in.data(), weight_.value.data(),
                          options_.bias ? bias_.value.data() : nullptr, d, e);
}

bool Conv2d::backward_params(const Tensor& d_out, const Tensor& in, const Tensor& /*out*/) {
  run_backward(nullptr, d_out, in);
  return true;
}

std::string Conv2d::describe() const {
  return fmt::format("Conv2d({}, {}, kernel={}, stride={}, padding={}{})", options_.in_channels,
                     options_.out_channels, options_.kernel, options_.stride, options_.padding,
                     options_.bias ? "" : ", bias=false");
}

int64_t Conv2d::flops(const Shape& in) const {
  Conv2dDims d = conv2d_dims(options_, in);
  int64_t outputs = d.n * d.oc * d.oh * d.ow;
  return 2 * outputs * d.c * d.k * d.k + (options_.bias ? outputs : 0);
}

std::vector<NamedParameter> Conv2d::params() {
  std::vector<NamedParameter> p{{"weight", &weight_}};
  if (options_.bias) p.push_back({"bias", &bias_});
  return p;
}

void Conv2d::init(Init scheme, Rng& rng) {
  int64_t kk = options_.kernel * options_.kernel;
  init_weight_and_bias(weight_.value, options_.bias ? &bias_.value : nullptr,
                       options_.in_channels * kk, options_.out_channels * kk, scheme, rng);
}

}  // namespace scratchnet
