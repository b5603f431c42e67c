// relu.h — rectified linear unit, as torch.nn.ReLU.
//
//   in   any shape, e.g. (N, C, H, W) or (N, F)
//   out  same shape as in
//
// out = max(in, 0). The gradient is 1 where in > 0 and 0 where in <= 0: exactly at 0 it is
// 0, as in PyTorch. A NaN input gives a NaN output. No parameters.
// flops: one per element.
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"

namespace scratchnet {

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// out (n) = max(in (n), 0), overwritten.
template <typename T>
void relu_forward(T* out, const T* in, int64_t n);
// d_in (n) = in > 0 ? d_out : 0, overwritten; `in` is the forward input.
template <typename T>
void relu_backward(T* d_in, const T* d_out, const T* in, int64_t n);

class ReLU : public Layer {
 public:
  ReLU() = default;

  std::string kind() const override { return "ReLU"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override { return "ReLU"; }
  int64_t flops(const Shape& in) const override;
};

}  // namespace scratchnet
