// linear.h — fully connected layer, as torch.nn.Linear.
//
//   in     (N, F_in)
//   weight (F_out, F_in)    state_dict name "weight"
//   bias   (F_out)          "bias", absent when bias = false
//   out    (N, F_out)
//
// out[n, o] = bias[o] + sum_i in[n, i] * weight[o, i]      (out = in @ weight^T + bias)
//
// The input must be 2-D: an image batch (N, C, H, W) needs a Flatten in front, and its
// F_in = C * H * W must equal in_features (the check that catches a wrong flatten size at
// model-build time). Parameters are zero until init() draws them (Sequential::init does).
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"

namespace scratchnet {

struct LinearOptions {
  int64_t in_features = 0;   // required, >= 1
  int64_t out_features = 0;  // required, >= 1
  bool bias = true;
};

// Kernels, instantiated for float and double. Float runs on the packed matrix multiply
// (kernels/gemm.h); double runs plain loops, for the gradient check and as the reference the
// float path is tested against. Results do not depend on the thread count.
//
// out (N, F_out) is overwritten; in (N, F_in), weight (F_out, F_in), bias (F_out) or null.
template <typename T>
void linear_forward(T* out, const T* in, const T* weight, const T* bias, int64_t n, int64_t f_in,
                    int64_t f_out);
// d_in (N, F_in) is overwritten with d_out @ weight; d_weight (F_out, F_in) += d_out^T @ in and
// d_bias (F_out) += column sums of d_out (either may be null to skip it; d_in may be null too).
// d_out (N, F_out). The parameter gradients sum over the batch in a fixed order.
template <typename T>
void linear_backward(T* d_in, T* d_weight, T* d_bias, const T* d_out, const T* in, const T* weight,
                     int64_t n, int64_t f_in, int64_t f_out);

class Linear : public Layer {
 public:
  explicit Linear(const LinearOptions& options);  // throws on invalid options

  std::string kind() const override { return "Linear"; }
  Shape output_shape(const Shape& in) const override;
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  bool backward_params(const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override;  // "Linear(1600, 128)", "Linear(4, 2, bias=false)"
  int64_t flops(const Shape& in) const override;
  std::vector<NamedParameter> params() override;
  void init(Init scheme, Rng& rng) override;

  const LinearOptions& options() const { return options_; }
  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }  // empty tensors when options.bias is false

 private:
  // backward and backward_params: d_in null for the parameter gradients alone.
  void run_backward(Tensor* d_in, const Tensor& d_out, const Tensor& in);

  LinearOptions options_;
  Parameter weight_, bias_;
};

}  // namespace scratchnet
