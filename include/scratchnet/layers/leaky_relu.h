// leaky_relu.h — leaky rectified linear unit, as torch.nn.LeakyReLU.
//
//   in   any shape, e.g. (N, C, H, W) or (N, F)
//   out  same shape as in
//
// out = in > 0 ? in : negative_slope * in. The gradient is 1 where in > 0 and
// negative_slope where in <= 0 (negative_slope exactly at 0, as in PyTorch). No parameters.
// flops: one per element.
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"

namespace scratchnet {

struct LeakyReLUOptions {
  float negative_slope = 0.01f;  // finite; PyTorch's default
};

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// out (n) = in > 0 ? in : negative_slope * in, overwritten.
template <typename T>
void leaky_relu_forward(T* out, const T* in, int64_t n, float negative_slope);
// d_in (n) = in > 0 ? d_out : negative_slope * d_out, overwritten; `in` is the forward input.
template <typename T>
void leaky_relu_backward(T* d_in, const T* d_out, const T* in, int64_t n, float negative_slope);

class LeakyReLU : public Layer {
 public:
  explicit LeakyReLU(const LeakyReLUOptions& options = {});  // throws on invalid options

  std::string kind() const override { return "LeakyReLU"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override;  // "LeakyReLU(negative_slope=0.01)"
  int64_t flops(const Shape& in) const override;

  const LeakyReLUOptions& options() const { return options_; }

 private:
  LeakyReLUOptions options_;
};

}  // namespace scratchnet
