#include "scratchnet/layers/batch_norm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "batch_norm_sums.h"
#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {

using namespace batch_norm_sums;

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
  parallel_for(c, parallel_grain(n * spatial), [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t offset = ch * spatial;
      const T scale = train_statistics(mean + ch, var + ch, invstd + ch, in + offset, stride,
                                       gamma[ch], n, spatial, eps);
      affine_rows(out + offset, in + offset, mean[ch], scale, beta[ch], n, stride, spatial, relu);
    }
  });
}

template <typename T>
void batch_norm_backward_train(T* d_in, T* d_gamma, T* d_beta, const T* d_out, const T* in,
                               const T* mean, const T* invstd, const T* gamma, int64_t n, int64_t c,
                               int64_t spatial) {
  const int64_t stride = c * spatial;
  parallel_for(c, parallel_grain(n * spatial), [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t offset = ch * spatial;
      backward_train_channel(d_in + offset, stride, d_gamma ? d_gamma + ch : nullptr,
                             d_beta ? d_beta + ch : nullptr, d_out + offset, stride, in + offset,
                             stride, mean[ch], invstd[ch], gamma[ch], n, spatial);
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
      affine_rows(out + ch * spatial, in + ch * spatial, running_mean[ch],
                  eval_scale(gamma[ch], running_var[ch], eps), beta[ch], n, stride, spatial, relu);
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
        double sum_dy = 0, sum_dy_xc = 0;
        add_backward_sums(sum_dy, sum_dy_xc, d_out + offset, stride, in + offset, stride,
                          static_cast<double>(running_mean[ch]), n, spatial);
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

void BatchNorm::begin_training(const Shape& in) {
  const int64_t n = in[0], c = in[1], spatial = spatial_size(in);
  SN_CHECK(n * spatial > 1,
           "{}: expected more than 1 value per channel when training, got input of shape {}",
           kind(), shape_str(in));
  mean_.resize({c});
  var_.resize({c});
  invstd_.resize({c});
}

void BatchNorm::end_training(const Shape& in) {
  batch_norm_update_running(running_mean_.data(), running_var_.data(), mean_.data(), var_.data(),
                            in[1], in[0] * spatial_size(in), options_.momentum);
  num_batches_tracked_[0] += 1;
  has_forward_ = true;
  last_mode_ = Mode::kTrain;
}

void BatchNorm::run_forward(Tensor& out, const Tensor& in, Mode mode, bool relu) {
  const Shape& shape = in.shape();
  check_shape(out, output_shape(shape), (kind() + ": output").c_str());
  const int64_t n = shape[0], c = shape[1], spatial = spatial_size(shape);
  const double eps = options_.eps;
  if (statistics_frozen_) mode = Mode::kEval;
  if (mode == Mode::kTrain) {
    begin_training(shape);
    batch_norm_forward_train(out.data(), mean_.data(), var_.data(), invstd_.data(), in.data(),
                             weight_.value.data(), bias_.value.data(), n, c, spatial, eps, relu);
    end_training(shape);
    return;
  }
  batch_norm_forward_eval(out.data(), in.data(), running_mean_.data(), running_var_.data(),
                          weight_.value.data(), bias_.value.data(), n, c, spatial, eps, relu);
  if (!has_forward_ || last_mode_ != mode) {  // written only on a change: eval forwards on
    has_forward_ = true;                      // other threads then only read them
    last_mode_ = mode;
  }
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

BatchNorm::ChannelBackward BatchNorm::backward_by_channel(const Tensor& d_out, const Tensor& in) {
  SN_CHECK(uses_batch_statistics(), "{}: backward_by_channel needs a training forward first",
           kind());
  const Shape& shape = in.shape();
  check_shape(d_out, output_shape(shape), (kind() + ": gradient of the output").c_str());
  const int64_t n = shape[0], stride = shape[1] * spatial_size(shape),
                spatial = spatial_size(shape);
  return [this, n, stride, spatial, dy = d_out.data(), x = in.data()](
             float* dst, int64_t dst_stride, int64_t ch) {
    const int64_t offset = ch * spatial;
    backward_train_channel(dst, dst_stride, weight_.grad.data() + ch, bias_.grad.data() + ch,
                           dy + offset, stride, x + offset, stride, mean_[ch], invstd_[ch],
                           weight_.value[ch], n, spatial);
  };
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
