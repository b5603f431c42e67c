// sigmoid.h — logistic sigmoid, as torch.nn.Sigmoid.
//
//   in   any shape, e.g. (N, C, H, W) or (N, F)
//   out  same shape as in, values in [0, 1]
//
// out = 1 / (1 + exp(-in)); its derivative is out * (1 - out), so backward needs only the
// forward output. Large negative inputs give exactly 0 (exp overflows to inf), never NaN.
// No parameters.
// flops: kSigmoidFlopsPerElement (4) per element: a negation, an exponential (counted as
// one operation), an add and a divide. Tanh uses the same convention.
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"

namespace scratchnet {

inline constexpr int64_t kSigmoidFlopsPerElement = 4;

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// out (n) = 1 / (1 + exp(-in (n))), overwritten.
template <typename T>
void sigmoid_forward(T* out, const T* in, int64_t n);
// d_in (n) = d_out * out * (1 - out), overwritten; `out` is the forward output.
template <typename T>
void sigmoid_backward(T* d_in, const T* d_out, const T* out, int64_t n);

class Sigmoid : public Layer {
 public:
  Sigmoid() = default;

  std::string kind() const override { return "Sigmoid"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override { return "Sigmoid"; }
  int64_t flops(const Shape& in) const override;
};

}  // namespace scratchnet
