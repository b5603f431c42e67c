// batch_norm.h — batch normalisation: options, reference kernels and the layer logic shared by
// BatchNorm2d (batch_norm2d.h) and BatchNorm1d (batch_norm1d.h), following PyTorch's
// torch.nn.BatchNorm* with affine = true and track_running_stats = true.
//
// The kernels see every input as (N, C, S): C channels, each with S contiguous values per
// sample (S = H * W for images, S = 1 for a feature batch (N, F)). Per channel c, over the
// M = N * S values x:
//
//   training  mean = sum(x) / M, var = sum((x - mean)^2) / M (biased),
//             invstd = 1 / sqrt(var + eps), x_hat = (x - mean) * invstd,
//             out = gamma * x_hat + beta;
//             running_mean = (1 - momentum) * running_mean + momentum * mean,
//             running_var  = (1 - momentum) * running_var + momentum * var * M / (M - 1)
//             (unbiased), num_batches_tracked += 1. Needs M > 1.
//   eval      out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
//
//   weight (C) gamma, init 1      state_dict name "weight"
//   bias   (C) beta, init 0       "bias"
//   buffers running_mean (C) init 0, running_var (C) init 1, num_batches_tracked () init 0
//
// Per-channel sums are accumulated in double. Kernels are parallel over channels, so results
// do not depend on the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "scratchnet/layer.h"
#include "scratchnet/layers/max_pool2d.h"

namespace scratchnet {

struct BatchNormOptions {
  int64_t num_features = 0;  // required, >= 1: C of (N, C, H, W), F of (N, F)
  float eps = 1e-5f;         // > 0, added to the variance
  float momentum = 0.1f;     // in [0, 1], weight of the new batch in the running statistics
};

// Training forward. out (N, C, S) is overwritten (with relu, by max(result, 0)); mean, var
// (biased) and invstd (C) receive the batch statistics (backward_train needs mean and invstd);
// in (N, C, S); gamma, beta (C).
template <typename T>
void batch_norm_forward_train(T* out, T* mean, T* var, T* invstd, const T* in, const T* gamma,
                              const T* beta, int64_t n, int64_t c, int64_t spatial, double eps,
                              bool relu = false);

// Training backward, through the batch mean and variance of forward_train on the same `in`:
//   d_beta += sum(d_out), d_gamma += sum(d_out * x_hat),
//   d_in = gamma * invstd * (d_out - mean(d_out) - x_hat * mean(d_out * x_hat)).
// d_in (N, C, S) is overwritten; d_gamma, d_beta (C) are added into (either may be null).
template <typename T>
void batch_norm_backward_train(T* d_in, T* d_gamma, T* d_beta, const T* d_out, const T* in,
                               const T* mean, const T* invstd, const T* gamma, int64_t n, int64_t c,
                               int64_t spatial);

// Eval forward with the running statistics. out (N, C, S) is overwritten; with relu, by
// max(result, 0) (one pass instead of BatchNorm then ReLU, same values).
template <typename T>
void batch_norm_forward_eval(T* out, const T* in, const T* running_mean, const T* running_var,
                             const T* gamma, const T* beta, int64_t n, int64_t c, int64_t spatial,
                             double eps, bool relu = false);

// Eval backward, the affine map: d_in = d_out * gamma / sqrt(running_var + eps) (overwritten),
// d_beta += sum(d_out), d_gamma += sum(d_out * x_hat) with x_hat from the running statistics.
template <typename T>
void batch_norm_backward_eval(T* d_in, T* d_gamma, T* d_beta, const T* d_out, const T* in,
                              const T* running_mean, const T* running_var, const T* gamma,
                              int64_t n, int64_t c, int64_t spatial, double eps);

// Training forward, ReLU and max-pooling as one, channel by channel (the batch-norm output of
// a channel is pooled while it is in the cache, never written out): out (N, C, OH, OW) gets
// the pooled values with ReLU applied, argmax (N, C, OH, OW) the winners as
// max_pool2d_forward's, scale (C) the factor gamma * invstd the forward multiplied by; in
// (N, C, H, W) with d its pooling sizes. The values of batch_norm_forward_train, then
// max_pool2d_forward, then relu_forward (ReLU after the max-pool: the two commute).
// Instantiated for float.
template <typename T>
void batch_norm_relu_pool_forward_train(T* out, int32_t* argmax, T* mean, T* var, T* invstd,
                                        T* scale, const T* in, const T* gamma, const T* beta,
                                        const Pool2dDims& d, double eps);

// Its backward: d_in (N, C, H, W) from d_out (N, C, OH, OW), with out, argmax, mean and invstd
// as the forward wrote them. The values of relu_backward, max_pool2d_backward and
// batch_norm_backward_train in turn; d_gamma, d_beta (C) are added into.
template <typename T>
void batch_norm_relu_pool_backward_train(T* d_in, T* d_gamma, T* d_beta, const T* d_out,
                                         const T* out, const int32_t* argmax, const T* in,
                                         const T* mean, const T* invstd, const T* gamma,
                                         const Pool2dDims& d);

// The same in two halves, for a convolution's backward that takes d_in sample by sample
// (Conv2dBackwardFusion::fill): _params adds d_gamma, d_beta and writes grads (C, 3), each
// channel's factors for d_in; _sample then writes sample i's d_in (C, H, W) into d_in, the
// values batch_norm_relu_pool_backward_train writes there (it may run on several threads at
// once, for different samples).
template <typename T>
void batch_norm_relu_pool_backward_params(T* grads, T* d_gamma, T* d_beta, const T* d_out,
                                          const T* out, const int32_t* argmax, const T* in,
                                          const T* mean, const T* invstd, const T* gamma,
                                          const Pool2dDims& d);
template <typename T>
void batch_norm_relu_pool_backward_sample(T* d_in, int64_t i, const T* grads, const T* d_out,
                                          const T* out, const int32_t* argmax, const T* in,
                                          const T* mean, const Pool2dDims& d);

// running_mean, running_var (C) updated from a batch's mean and biased var (C) over
// `count` = N * S > 1 values per channel, as PyTorch does (the variance made unbiased).
template <typename T>
void batch_norm_update_running(T* running_mean, T* running_var, const T* mean, const T* var,
                               int64_t c, int64_t count, double momentum);

// The layer logic of BatchNorm2d and BatchNorm1d; they add only kind() and output_shape().
// Forward in training mode keeps the batch mean and inverse std (reused buffers) for
// backward; backward follows the mode of the last forward. With frozen statistics (fine-tuning,
// finetune.h) training mode behaves as eval mode: the running statistics are used and kept.
class BatchNorm : public Layer {
 public:
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  bool forward_relu(Tensor& out, const Tensor& in, Mode mode) override;  // backward reads no `out`
  // A training forward, then ReLU, then `pool`, as one (batch_norm_relu_pool_forward_train)
  // into out, the pool's output; the pool keeps the winners for backward_relu_pool. False,
  // having run nothing, when the statistics are frozen (training then uses the running ones)
  // or `in` is not (N, C, H, W).
  bool train_relu_pool(Tensor& out, MaxPool2d& pool, const Tensor& in);
  // The backward of the three after train_relu_pool: d_in (N, C, H, W) from d_out, the
  // gradient for the pool's output `out`.
  void backward_relu_pool(Tensor& d_in, const Tensor& d_out, const MaxPool2d& pool,
                          const Tensor& in, const Tensor& out);
  // backward_relu_pool in two halves: the parameter gradients now, and the function returned
  // writes sample i's d_in (C, H, W) into its first argument (what backward_relu_pool writes
  // there), for Conv2dBackwardFusion::fill. It reads d_out, in and out: they must outlive it.
  using SampleGrad = std::function<void(float* d_in, int64_t i)>;
  SampleGrad backward_relu_pool_params(const Tensor& d_out, const MaxPool2d& pool, const Tensor& in,
                                       const Tensor& out);
  // backward in training by channel, for the convolution before it
  // (Conv2dBackwardFusion::fill_channel): the function returned adds channel ch's d_gamma and
  // d_beta and writes its d_in rows (N, H, W), row i at dst + i * stride (what backward writes
  // there); it must be called once per channel, and reads d_out and in: they must outlive it.
  // Only after a forward that used the batch statistics (uses_batch_statistics()).
  using ChannelBackward = std::function<void(float* dst, int64_t stride, int64_t ch)>;
  ChannelBackward backward_by_channel(const Tensor& d_out, const Tensor& in);
  bool uses_batch_statistics() const { return has_forward_ && last_mode_ == Mode::kTrain; }
  // The output train_relu_pool did not write, from its batch statistics (nothing updated):
  // for a backward that stops between the three layers and needs them one by one.
  void unpooled_output(Tensor& out, const Tensor& in) const;
  // Eval mode as out = (in - center) * scale + shift per channel, each (C), with the values
  // and rounding batch_norm_forward_eval uses (what Conv2dEpilogue takes).
  void eval_affine(float* center, float* scale, float* shift) const;
  std::string describe() const override;  // "BatchNorm2d(32, eps=1e-05, momentum=0.1)"
  // Two per element (the normalisation as one multiply-add per value).
  int64_t flops(const Shape& in) const override;
  std::vector<NamedParameter> params() override;  // "weight", "bias"
  // "running_mean", "running_var", "num_batches_tracked"
  std::vector<NamedBuffer> buffers() override;
  void init(Init scheme, Rng& rng) override;  // weight 1, bias 0, running statistics reset

  const BatchNormOptions& options() const { return options_; }
  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }
  Tensor& running_mean() { return running_mean_; }                // (C)
  Tensor& running_var() { return running_var_; }                  // (C)
  Tensor& num_batches_tracked() { return num_batches_tracked_; }  // () a count
  void freeze_statistics(bool frozen) { statistics_frozen_ = frozen; }
  bool statistics_frozen() const { return statistics_frozen_; }

 protected:
  // Validates the options; `kind` names the layer in the messages.
  BatchNorm(const std::string& kind, const BatchNormOptions& options);

 private:
  void reset();
  void run_forward(Tensor& out, const Tensor& in, Mode mode, bool relu);
  // A training forward on `in`: checks it, sizes the batch statistics; then, after the
  // kernel, updates the running statistics.
  void begin_training(const Shape& in);
  void end_training(const Shape& in);
  // The checks of a backward after train_relu_pool (`caller` names it); the pool's sizes.
  Pool2dDims relu_pool_dims(const char* caller, const Tensor& d_out, const MaxPool2d& pool,
                            const Tensor& in, const Tensor& out) const;

  BatchNormOptions options_;
  Parameter weight_, bias_;
  Tensor running_mean_, running_var_, num_batches_tracked_;
  Tensor mean_, var_, invstd_;  // (C) batch statistics of the last training forward
  Tensor scale_;                // (C) gamma * invstd of the last train_relu_pool
  Tensor grads_;                // (C, 3) of the last backward_relu_pool_params
  bool has_forward_ = false, statistics_frozen_ = false;
  Mode last_mode_ = Mode::kTrain;
};

}  // namespace scratchnet
