// max_pool2d.h — 2-D max pooling, as torch.nn.MaxPool2d with dilation 1 and ceil_mode false.
//
//   in   (N, C, H, W)     any C
//   out  (N, C, OH, OW)   OH = (H + 2*padding - K) / stride + 1, likewise OW
//
// out[n, c, y, x] = max_{i, j < K} in[n, c, y*stride + i - padding, x*stride + j - padding]
// with -inf outside the input, so padding never wins. Ties go to the first maximum in
// row-major window order and a NaN in the window wins, both as in PyTorch.
// The gradient of each output flows whole to the input element that won its window; where
// windows overlap (stride < K) an element receives the sum over every window it won.
// stride 0 means stride = kernel (PyTorch's stride=None); padding is at most K/2.
// No parameters. forward records the winners (argmax) for backward in a buffer sized once per
// batch shape and then reused.
#pragma once

#include <cstdint>
#include <vector>

#include "scratchnet/layer.h"
#include "scratchnet/layers/pool2d_dims.h"

namespace scratchnet {

struct MaxPool2dOptions {
  int64_t kernel = 0;   // required, >= 1 (square K x K)
  int64_t stride = 0;   // >= 1, or 0 for stride = kernel
  int64_t padding = 0;  // 0 <= padding <= kernel / 2, -inf on every side
};

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// out (N, C, OH, OW) is overwritten; argmax (N, C, OH, OW) receives for each output the
// position y * W + x of the winning element inside its input plane (may be null to skip it).
template <typename T>
void max_pool2d_forward(T* out, int32_t* argmax, const T* in, const Pool2dDims& d);
// d_in (N, C, H, W) is overwritten: zero except at the argmax positions, which receive the
// sum of the d_out (N, C, OH, OW) values whose window they won.
template <typename T>
void max_pool2d_backward(T* d_in, const T* d_out, const int32_t* argmax, const Pool2dDims& d);

// One (H, W) plane of each (d.n and d.c are not read), for fused kernels that pool planes
// they just computed (BatchNorm::train_relu_pool). Instantiated for float.
template <typename T>
void max_pool2d_forward_plane(T* out, int32_t* argmax, const T* in, const Pool2dDims& d);
template <typename T>
void max_pool2d_backward_plane(T* d_in, const T* d_out, const int32_t* argmax, const Pool2dDims& d);

class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options);  // throws on invalid options

  std::string kind() const override { return "MaxPool2d"; }
  Shape output_shape(const Shape& in) const override;
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  // Pooling then ReLU on the pooled values: the same as ReLU then pooling, on a quarter of
  // the values for a 2x2 window (the same winners where the maximum is positive, and a zero
  // gradient either way elsewhere). backward reads no `out`.
  bool forward_relu(Tensor& out, const Tensor& in, Mode mode) override;
  bool commutes_with_relu() const override { return true; }
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override;          // "MaxPool2d(kernel=2, stride=2, padding=0)"
  int64_t flops(const Shape& in) const override;  // N*C*OH*OW*(K*K - 1) comparisons

  // The options with stride resolved (never 0).
  const MaxPool2dOptions& options() const { return options_; }
  // The sizes of a pooling of input shape `in`; throws as output_shape does.
  Pool2dDims dims(const Shape& in) const;
  // The winners' buffer (N, C, OH, OW) for a forward on input shape `in`, sized and marked as
  // that forward's: for a fused forward that pools for this layer (BatchNorm::train_relu_pool).
  int32_t* plan_argmax(const Shape& in);
  // The winners of the last forward, which must have been on input shape `in` (else throws).
  const int32_t* saved_argmax(const Shape& in) const;

 private:
  MaxPool2dOptions options_;
  std::vector<int32_t> argmax_;  // (N, C, OH, OW) from the last forward
  Shape argmax_input_shape_;     // the input shape of that forward
};

}  // namespace scratchnet
