#include "scratchnet/layers/batch_norm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {

constexpr int kLanes = 4;  // independent partial sums, so the reductions vectorise

// sum_{i < len} term(i) in double: kLanes partial sums combined in a fixed order, then the
// tail. The order depends only on len, never on the thread count.
template <typename F>
double lane_sum(int64_t len, F term) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(i + l);
  double s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
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

bool has_avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}

// term_of for 4 consecutive floats: one vector of the kLanes = 4 lanes of lane_sum. Separate
// multiplies and adds (no fused multiply-add), so every lane rounds as the scalar code does.
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

// channel_sum for float with AVX2: the same lane sums, four rows at a time (independent
// chains of additions), added to the total in row order, so the result has the same bits.
template <Term kTerm>
__attribute__((target("avx2"))) double channel_sum_avx2(const float* a, const float* b,
                                                        double center, int64_t n, int64_t stride,
                                                        int64_t offset, int64_t spatial) {
  constexpr int kRows = 4;
  const __m256d c = _mm256_set1_pd(center);
  double total = 0;
  for (int64_t i = 0; i < n; i += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, n - i));
    const float* ar[kRows];
    const float* br[kRows];
    __m256d acc[kRows];
    for (int r = 0; r < kRows; ++r) {
      const int64_t row = i + std::min(r, rows - 1);  // spare chains repeat the last row
      ar[r] = a + row * stride + offset;
      br[r] = b ? b + row * stride + offset : nullptr;
      acc[r] = _mm256_setzero_pd();
    }
    int64_t s = 0;
    for (; s + kLanes <= spatial; s += kLanes)
      for (int r = 0; r < kRows; ++r)
        acc[r] = _mm256_add_pd(acc[r], term4<kTerm>(ar[r] + s, br[r] ? br[r] + s : nullptr, c));
    for (int r = 0; r < rows; ++r) {
      alignas(32) double l[kLanes];
      _mm256_store_pd(l, acc[r]);
      double v = (l[0] + l[1]) + (l[2] + l[3]);
      for (int64_t t = s; t < spatial; ++t) v += term_of<kTerm>(ar[r], br[r], center, t);
      total += v;
    }
  }
  return total;
}

#endif

// The sum over the channel's N rows (in order) of lane_sum over each row of term_of, with a
// = the channel's rows of one tensor and b (kProduct only) of another, at `offset` = ch *
// spatial and row stride c * spatial.
template <Term kTerm, typename T>
double channel_sum(const T* a, const T* b, double center, int64_t n, int64_t stride, int64_t offset,
                   int64_t spatial) {
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_same_v<T, float>)
    if (has_avx2()) return channel_sum_avx2<kTerm>(a, b, center, n, stride, offset, spatial);
#endif
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* ar = a + i * stride + offset;
    const T* br = b ? b + i * stride + offset : nullptr;
    total += lane_sum(spatial, [&](int64_t s) { return term_of<kTerm>(ar, br, center, s); });
  }
  return total;
}

// The two sums a channel's backward needs: sum(d_out) and sum(d_out * (in - center)), over
// the channel's N rows of `spatial` values at `offset` = ch * spatial, row stride c * spatial.
template <typename T>
void backward_sums(double& sum_dy, double& sum_dy_xc, const T* d_out, const T* in, double center,
                   int64_t n, int64_t stride, int64_t offset, int64_t spatial) {
  sum_dy = channel_sum<Term::kValue, T>(d_out, nullptr, 0.0, n, stride, offset, spatial);
  sum_dy_xc = channel_sum<Term::kProduct, T>(d_out, in, center, n, stride, offset, spatial);
}

// out = (in - center) * scale + shift over one channel's N rows.
template <typename T>
void affine_rows(T* out, const T* in, T center, T scale, T shift, int64_t n, int64_t stride,
                 int64_t offset, int64_t spatial, bool relu = false) {
  for (int64_t i = 0; i < n; ++i) {
    const T* x = in + i * stride + offset;
    T* y = out + i * stride + offset;
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

// Eval mode's factor gamma * invstd with invstd = 1 / sqrt(running_var + eps), in double,
// rounded once.
template <typename T>
T eval_scale(T gamma, T running_var, double eps) {
  const double is = 1.0 / std::sqrt(static_cast<double>(running_var) + eps);
  return static_cast<T>(static_cast<double>(gamma) * is);
}

}  // namespace

template <typename T>
void batch_norm_forward_train(T* out, T* mean, T* var, T* invstd, const T* in, const T* gamma,
                              const T* beta, int64_t n, int64_t c, int64_t spatial, double eps,
                              bool relu) {
  const int64_t stride = c * spatial;
  const double count = static_cast<double>(n * spatial);
  parallel_for(c, parallel_grain(n * spatial), [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t offset = ch * spatial;
      // Two passes: the mean, then the squared deviations from it (no cancellation).
      const double sum = channel_sum<Term::kValue, T>(in, nullptr, 0.0, n, stride, offset, spatial);
      const double m = sum / count;
      const double sq = channel_sum<Term::kSquare, T>(in, nullptr, m, n, stride, offset, spatial);
      const double v = sq / count;
      const double is = 1.0 / std::sqrt(v + eps);
      mean[ch] = static_cast<T>(m);
      var[ch] = static_cast<T>(v);
      invstd[ch] = static_cast<T>(is);
      affine_rows(out, in, mean[ch], static_cast<T>(static_cast<double>(gamma[ch]) * is), beta[ch],
                  n, stride, offset, spatial, relu);
    }
  });
}

template <typename T>
void batch_norm_backward_train(T* d_in, T* d_gamma, T* d_beta, const T* d_out, const T* in,
                               const T* mean, const T* invstd, const T* gamma, int64_t n, int64_t c,
                               int64_t spatial) {
  const int64_t stride = c * spatial;
  const double count = static_cast<double>(n * spatial);
  parallel_for(c, parallel_grain(n * spatial), [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t offset = ch * spatial;
      const double m = static_cast<double>(mean[ch]), is = static_cast<double>(invstd[ch]);
      double sum_dy, sum_dy_xc;
      backward_sums(sum_dy, sum_dy_xc, d_out, in, m, n, stride, offset, spatial);
      if (d_beta) d_beta[ch] += static_cast<T>(sum_dy);
      if (d_gamma) d_gamma[ch] += static_cast<T>(sum_dy_xc * is);
      // d_in = k * (d_out - a - (x - mean) * b) with k = gamma * invstd, a = mean(d_out),
      // b = mean(d_out * x_hat) * invstd.
      const T k = static_cast<T>(static_cast<double>(gamma[ch]) * is);
      const T a = static_cast<T>(sum_dy / count);
      const T b = static_cast<T>(sum_dy_xc * is * is / count);
      const T mt = mean[ch];
      for (int64_t i = 0; i < n; ++i) {
        const T* dy = d_out + i * stride + offset;
        const T* x = in + i * stride + offset;
        T* dx = d_in + i * stride + offset;
        for (int64_t s = 0; s < spatial; ++s) dx[s] = k * ((dy[s] - a) - (x[s] - mt) * b);
      }
    }
  });
}

template <typename T>
void batch_norm_forward_eval(T* out, const T* in, const T* running_mean, const T* running_var,
                             const T* gamma, const T* beta, int64_t n, int64_t c, int64_t spatial,
                             double eps, bool relu) {
  const int64_t stride = c * spatial;
  parallel_for(c, parallel_grain(n * spatial), [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch)
      affine_rows(out, in, running_mean[ch], eval_scale(gamma[ch], running_var[ch], eps), beta[ch],
                  n, stride, ch * spatial, spatial, relu);
  });
}

template <typename T>
void batch_norm_backward_eval(T* d_in, T* d_gamma, T* d_beta, const T* d_out, const T* in,
                              const T* running_mean, const T* running_var, const T* gamma,
                              int64_t n, int64_t c, int64_t spatial, double eps) {
  const int64_t stride = c * spatial;
  parallel_for(c, parallel_grain(n * spatial), [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t offset = ch * spatial;
      const double is = 1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps);
      if (d_gamma || d_beta) {
        double sum_dy, sum_dy_xc;
        backward_sums(sum_dy, sum_dy_xc, d_out, in, static_cast<double>(running_mean[ch]), n,
                      stride, offset, spatial);
        if (d_beta) d_beta[ch] += static_cast<T>(sum_dy);
        if (d_gamma) d_gamma[ch] += static_cast<T>(sum_dy_xc * is);
      }
      const T k = static_cast<T>(static_cast<double>(gamma[ch]) * is);
      for (int64_t i = 0; i < n; ++i) {
        const T* dy = d_out + i * stride + offset;
        T* dx = d_in + i * stride + offset;
        for (int64_t s = 0; s < spatial; ++s) dx[s] = dy[s] * k;
      }
    }
  });
}

template <typename T>
void batch_norm_update_running(T* running_mean, T* running_var, const T* mean, const T* var,
                               int64_t c, int64_t count, double momentum) {
  const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
  for (int64_t ch = 0; ch < c; ++ch) {
    running_mean[ch] = static_cast<T>((1 - momentum) * static_cast<double>(running_mean[ch]) +
                                      momentum * static_cast<double>(mean[ch]));
    running_var[ch] = static_cast<T>((1 - momentum) * static_cast<double>(running_var[ch]) +
                                     momentum * static_cast<double>(var[ch]) * unbias);
  }
}

#define SN_INSTANTIATE(T)                                                                          \
  template void batch_norm_forward_train<T>(T*, T*, T*, T*, const T*, const T*, const T*, int64_t, \
                                            int64_t, int64_t, double, bool);                       \
  template void batch_norm_backward_train<T>(T*, T*, T*, const T*, const T*, const T*, const T*,   \
                                             const T*, int64_t, int64_t, int64_t);                 \
  template void batch_norm_forward_eval<T>(T*, const T*, const T*, const T*, const T*, const T*,   \
                                           int64_t, int64_t, int64_t, double, bool);               \
  template void batch_norm_backward_eval<T>(T*, T*, T*, const T*, const T*, const T*, const T*,    \
                                            const T*, int64_t, int64_t, int64_t, double);          \
  template void batch_norm_update_running<T>(T*, T*, const T*, const T*, int64_t, int64_t, double);
SN_INSTANTIATE(float)
SN_INSTANTIATE(double)
#undef SN_INSTANTIATE

BatchNorm::BatchNorm(const std::string& kind, const BatchNormOptions& options) : options_(options) {
  SN_CHECK(options.num_features >= 1, "{}: num_features must be at least 1, got {}", kind,
           options.num_features);
  SN_CHECK(options.eps > 0 && std::isfinite(options.eps), "{}: eps must be positive, got {}", kind,
           options.eps);
  SN_CHECK(options.momentum >= 0 && options.momentum <= 1, "{}: momentum must be in [0, 1], got {}",
           kind, options.momentum);
  const int64_t c = options.num_features;
  weight_ = Parameter({c});
  bias_ = Parameter({c});
  running_mean_ = Tensor({c});
  running_var_ = Tensor({c});
  num_batches_tracked_ = Tensor(Shape{});
  reset();
}

void BatchNorm::reset() {
  weight_.value.fill(1.0f);
  bias_.value.zero();
  running_mean_.zero();
  running_var_.fill(1.0f);
  num_batches_tracked_.zero();
}

namespace {
// Values per channel and sample: the product of the dimensions after (N, C).
int64_t spatial_size(const Shape& in) {
  int64_t s = 1;
  for (size_t i = 2; i < in.size(); ++i) s *= in[i];
  return s;
}
}  // namespace

void BatchNorm::forward(Tensor& out, const Tensor& in, Mode mode) {
  run_forward(out, in, mode, false);
}

void BatchNorm::eval_affine(float* center, float* scale, float* shift) const {
  for (int64_t ch = 0; ch < options_.num_features; ++ch) {
    center[ch] = running_mean_[ch];
    scale[ch] = eval_scale(weight_.value[ch], running_var_[ch], options_.eps);
    shift[ch] = bias_.value[ch];
  }
}

bool BatchNorm::forward_relu(Tensor& out, const Tensor& in, Mode mode) {
  run_forward(out, in, mode, true);
  return true;
}

void BatchNorm::run_forward(Tensor& out, const Tensor& in, Mode mode, bool relu) {
  const Shape& shape = in.shape();
  check_shape(out, output_shape(shape), (kind() + ": output").c_str());
  const int64_t n = shape[0], c = shape[1], spatial = spatial_size(shape);
  const double eps = options_.eps;
  if (statistics_frozen_) mode = Mode::kEval;
  if (mode == Mode::kTrain) {
    SN_CHECK(n * spatial > 1,
             "{}: expected more than 1 value per channel when training, got input of shape {}",
             kind(), shape_str(shape));
    mean_.resize({c});
    var_.resize({c});
    invstd_.resize({c});
    batch_norm_forward_train(out.data(), mean_.data(), var_.data(), invstd_.data(), in.data(),
                             weight_.value.data(), bias_.value.data(), n, c, spatial, eps, relu);
    batch_norm_update_running(running_mean_.data(), running_var_.data(), mean_.data(), var_.data(),
                              c, n * spatial, options_.momentum);
    num_batches_tracked_[0] += 1;
  } else {
    batch_norm_forward_eval(out.data(), in.data(), running_mean_.data(), running_var_.data(),
                            weight_.value.data(), bias_.value.data(), n, c, spatial, eps, relu);
  }
  has_forward_ = true;
  last_mode_ = mode;
}

void BatchNorm::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in,
                         const Tensor& /*out*/) {
  SN_CHECK(has_forward_, "{}: backward called before forward", kind());
  const Shape& shape = in.shape();
  check_shape(d_out, output_shape(shape), (kind() + ": gradient of the output").c_str());
  check_shape(d_in, shape, (kind() + ": gradient of the input").c_str());
  const int64_t n = shape[0], c = shape[1], spatial = spatial_size(shape);
  if (last_mode_ == Mode::kTrain) {
    batch_norm_backward_train(d_in.data(), weight_.grad.data(), bias_.grad.data(), d_out.data(),
                              in.data(), mean_.data(), invstd_.data(), weight_.value.data(), n, c,
                              spatial);
  } else {
    batch_norm_backward_eval(d_in.data(), weight_.grad.data(), bias_.grad.data(), d_out.data(),
                             in.data(), running_mean_.data(), running_var_.data(),
                             weight_.value.data(), n, c, spatial, options_.eps);
  }
}

std::string BatchNorm::describe() const {
  return fmt::format("{}({}, eps={}, momentum={})", kind(), options_.num_features, options_.eps,
                     options_.momentum);
}

int64_t BatchNorm::flops(const Shape& in) const { return 2 * shape_numel(output_shape(in)); }

std::vector<NamedParameter> BatchNorm::params() { return {{"weight", &weight_}, {"bias", &bias_}}; }

std::vector<NamedBuffer> BatchNorm::buffers() {
  return {{"running_mean", &running_mean_},
          {"running_var", &running_var_},
          {"num_batches_tracked", &num_batches_tracked_}};
}

void BatchNorm::init(Init /*scheme*/, Rng& /*rng*/) { reset(); }

}  // namespace scratchnet
