// softmax.h — softmax over the features of each row, as torch.nn.Softmax(dim=1).
//
//   in   (N, F), F >= 1
//   out  (N, F), each row non-negative and summing to 1
//
// out[n, f] = exp(in[n, f] - m) / sum_g exp(in[n, g] - m), with m = max_g in[n, g].
// Subtracting the row maximum keeps every exponent <= 0, so huge logits cannot overflow:
// (1000, -1000) gives exactly (1, 0).
// Backward uses only the output y: d_in = y * (d_out - sum_f(d_out * y)) per row.
// No parameters; flops: kSoftmaxFlopsPerElement (5) per element: max, subtract, exp (counted
// as one operation), sum, divide.
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"

namespace scratchnet {

inline constexpr int64_t kSoftmaxFlopsPerElement = 5;

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// out (N, F) = row-wise softmax of in (N, F), overwritten.
template <typename T>
void softmax_forward(T* out, const T* in, int64_t n, int64_t f);
// d_in (N, F) = out * (d_out - rowsum(d_out * out)), overwritten; `out` is the forward output.
template <typename T>
void softmax_backward(T* d_in, const T* d_out, const T* out, int64_t n, int64_t f);

class Softmax : public Layer {
 public:
  Softmax() = default;

  std::string kind() const override { return "Softmax"; }
  Shape output_shape(const Shape& in) const override;  // throws unless in is (N, F), F >= 1
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override { return "Softmax(dim=1)"; }
  int64_t flops(const Shape& in) const override;
};

}  // namespace scratchnet
