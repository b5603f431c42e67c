// log_softmax.h — log of the softmax over the features of each row, as
// torch.nn.LogSoftmax(dim=1).
//
//   in   (N, F), F >= 1
//   out  (N, F), every value <= 0
//
// out[n, f] = in[n, f] - m - log(sum_g exp(in[n, g] - m)), with m = max_g in[n, g]
// (log-sum-exp with the maximum factored out), so huge logits stay finite and exact:
// (1000, -1000) gives (0, -2000).
// Backward uses only the output: d_in = d_out - exp(out) * sum_f(d_out) per row.
// No parameters; flops: kLogSoftmaxFlopsPerElement (5) per element: max, subtract, exp
// (counted as one operation), sum, subtract; the one log per row is not counted.
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"

namespace scratchnet {

inline constexpr int64_t kLogSoftmaxFlopsPerElement = 5;

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// out (N, F) = row-wise log-softmax of in (N, F), overwritten.
template <typename T>
void log_softmax_forward(T* out, const T* in, int64_t n, int64_t f);
// d_in (N, F) = d_out - exp(out) * rowsum(d_out), overwritten; `out` is the forward output.
template <typename T>
void log_softmax_backward(T* d_in, const T* d_out, const T* out, int64_t n, int64_t f);

class LogSoftmax : public Layer {
 public:
  LogSoftmax() = default;

  std::string kind() const override { return "LogSoftmax"; }
  Shape output_shape(const Shape& in) const override;  // throws unless in is (N, F), F >= 1
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override { return "LogSoftmax(dim=1)"; }
  int64_t flops(const Shape& in) const override;
};

}  // namespace scratchnet
