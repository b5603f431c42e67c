// conv2d.h — 2-D convolution (cross-correlation), as torch.nn.Conv2d with dilation 1 and
// groups 1.
//
//   in     (N, C, H, W)
//   weight (OC, C, K, K)      state_dict name "weight"
//   bias   (OC)               "bias", absent when bias = false
//   out    (N, OC, OH, OW)    OH = (H + 2*padding - K) / stride + 1, likewise OW
//                             (needs H + 2*padding >= K and W + 2*padding >= K)
//
// out[n, oc, y, x] = bias[oc] + sum_{c, i, j} weight[oc, c, i, j] *
//                    in[n, c, y*stride + i - padding, x*stride + j - padding]
// with zeros outside the input. Weights and bias are zero until init(), which follows
// torch.nn.Conv2d's default (kPyTorch) or Keras's (kGlorot) with fan_in = C*K*K and
// fan_out = OC*K*K. describe() gives "Conv2d(1, 32, kernel=3, stride=1, padding=0)", with
// ", bias=false" appended when there is no bias.
#pragma once

#include <cstdint>
#include <functional>

#include "scratchnet/layer.h"

namespace scratchnet {

struct Conv2dOptions {
  int64_t in_channels = 0;   // required, >= 1
  int64_t out_channels = 0;  // required, >= 1
  int64_t kernel = 0;        // required, >= 1 (square K x K)
  int64_t stride = 1;        // >= 1
  int64_t padding = 0;       // >= 0, zeros on every side
  bool bias = true;
};

// The sizes of one convolution call, derived from options and input shape.
struct Conv2dDims {
  int64_t n, c, h, w;  // input
  int64_t oc, oh, ow;  // output
  int64_t k, stride, padding;
};

// The dims for input shape `in` (N, C, H, W); throws the same errors as Conv2d::output_shape.
Conv2dDims conv2d_dims(const Conv2dOptions& options, const Shape& in);

// Reference kernels, instantiated for float and double (the gradient check runs in double):
// direct loops over a zero-padded copy of the input, the test oracle for the fast kernels.
// Both throw scratchnet::Error if `d` is inconsistent (OH, OW not what the formula gives).
// Outputs are parallel over the batch and parameter gradients over OC, each summed in a fixed
// order, so results are bit-identical for any thread count.
//
// out (N, OC, OH, OW) is overwritten; in (N, C, H, W); weight (OC, C, K, K); bias (OC) or null.
template <typename T>
void conv2d_forward_reference(T* out, const T* in, const T* weight, const T* bias,
                              const Conv2dDims& d);
// d_in (N, C, H, W) is overwritten; d_weight (OC, C, K, K) and d_bias (OC) are added into.
// Any of the three may be null to skip it. d_out (N, OC, OH, OW); in and weight as forward.
template <typename T>
void conv2d_backward_reference(T* d_in, T* d_weight, T* d_bias, const T* d_out, const T* in,
                               const T* weight, const Conv2dDims& d);

// The fast float kernels Conv2d runs, with the reference kernels' contracts (same arguments,
// same errors with the names conv2d_forward / conv2d_backward). They sum in other orders, so
// they agree with the reference to float rounding: each value within 1e-5 of the sum of the
// magnitudes of its terms (tested; about 1e-7 measured, up to 4e-6 where F(4x4, 3x3) runs).
// Results are bit-identical for any thread count: outputs and input gradients are split over
// the batch (or, for a batch smaller than the thread count, inside each product or over the
// output channels), parameter gradients never over the batch, and the algorithm is chosen
// from the shape alone (the backward pass also from how many of d_out's values are zero, never
// from the threads).
//
// Algorithms, by shape (src/kernels/conv2d_*.cpp; AVX-512 ones only where the CPU has it):
//   backward, 3x3, >= 8 input channels, at most a quarter of d_out nonzero (a convolution
//     followed by max pooling): direct sums over the nonzero d_out values only;
//   one input channel, 3x3, stride 1: direct vector kernels for the output and the parameter
//     gradients (the unfolded matrix would have only 9 rows);
//   3x3, stride 1, >= 8 channels in and out, output rows of >= 6 2x2 tiles and >= 256 tiles:
//     Winograd for the output, the input gradient and the weight gradient: F(4x4, 3x3) (4x
//     fewer multiplies) where the output (for the input gradient, the input) is 16 columns
//     wide or more, or at most 16 wide in a batch of 8 or more (16 samples' same tile per
//     vector), else F(2x2, 3x3) (2.25x fewer); where F(4x4, 3x3) runs on tiles, the input
//     gradient comes from the weight gradient's transformed d_out (the input transform
//     backwards);
//   the same with too few tiles for that (one image at a time), output channels a multiple
//     of 16: Winograd F(4x4, 3x3) for the output, one sample at a time with 16 channels per
//     vector, the transformed filters kept between calls for the last weights seen;
//   other stride 1: products that read the unfolded matrix in place from a padded copy
//     ("implicit GEMM"); the input gradient likewise as a convolution of d_out with the
//     flipped kernel when C >= 8 and padding <= K - 1;
//   anything else (or no AVX-512): im2col into a per-thread buffer + gemm (kernels/gemm.h),
//     col2im for the input gradient.
// The weight gradient for other stride-1 shapes sums per group of samples in batch order, split
// over blocks of the weight; otherwise im2col + gemm over groups of samples in batch order.
void conv2d_forward(float* out, const float* in, const float* weight, const float* bias,
                    const Conv2dDims& d);

// What Conv2d::forward_eval_fused applies to each output value y of channel o, in order:
// with `center`, BatchNorm in eval mode, (y - center[o]) * scale[o] + shift[o] rounded as
// batch_norm_forward_eval rounds it (BatchNorm::eval_affine gives the three); then ReLU; then
// with `pool`, 2x2 max-pooling with stride 2 (MaxPool2d's rule for ties and NaN).
struct Conv2dEpilogue {
  const float* center = nullptr;  // (OC) each, or all null: no BatchNorm
  const float* scale = nullptr;
  const float* shift = nullptr;
  bool pool = false;
};
void conv2d_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                     const float* in, const float* weight, const Conv2dDims& d);

// conv2d_backward with the passes next to it in a model done along the way (Sequential uses it
// for the layers around a convolution); the values are those of the passes one by one:
//   fill(dst, i), when given, writes sample i's d_out (OC, OH, OW) into dst, and d_out is not
//     read: the F(4x4, 3x3) backward (conv2d_winograd_backward_ok) asks for each sample as its
//     chunk needs it, so the gradient never reaches memory whole; elsewhere it is made whole in
//     `room` (N, OC, OH, OW) first, samples over threads. fill may run on several threads at
//     once, for different samples. (Without the whole gradient to count its zeros, the sparse
//     backward is not tried where the Winograd one runs.)
//   fill_channel(dst, stride, o), when given (and fill not), writes output channel o's d_out
//     rows (N of OH x OW), row i at dst + i * stride, once per channel; d_out is not read. The
//     one-input-channel direct kernels (the parameter gradients alone, d_in null) take it a few
//     channels at a time; elsewhere it is made whole in `room` first, channels over threads.
//   relu_in: the input came out of a ReLU, and d_in is the gradient at the ReLU's input: zero
//     where in <= 0 (relu_backward's values), in the Winograd backward per sample as it is
//     written.
struct Conv2dBackwardFusion {
  using ChannelFill = std::function<void(float* dst, int64_t stride, int64_t channel)>;
  std::function<void(float* dst, int64_t sample)> fill;
  ChannelFill fill_channel;
  float* room = nullptr;
  bool relu_in = false;
};
void conv2d_backward_fused(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                           const float* in, const float* weight, const Conv2dDims& d,
                           const Conv2dBackwardFusion& fusion);

class Conv2d : public Layer {
 public:
  explicit Conv2d(const Conv2dOptions& options);  // throws on invalid options

  std::string kind() const override { return "Conv2d"; }
  Shape output_shape(const Shape& in) const override;
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  bool backward_params(const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  // backward (d_in null: the parameter gradients alone) with conv2d_backward_fused's fusion;
  // d_out (N, OC, OH, OW) is not read when fusion.fill is given.
  void backward_fused(Tensor* d_in, const Tensor& d_out, const Tensor& in,
                      const Conv2dBackwardFusion& fusion);
  // The eval forward and `e` in one pass, where the activations stay in registers: the
  // values of Conv2d, (BatchNorm2d,) ReLU (and MaxPool2d(2)) one by one. out is (N, OC, OH, OW)
  // or with e.pool (N, OC, OH / 2, OW / 2). Only for inputs where has_eval_fused (those where
  // Winograd or the direct kernels for one input channel run the forward); throws for others.
  bool has_eval_fused(const Shape& in) const;
  void forward_eval_fused(Tensor& out, const Tensor& in, const Conv2dEpilogue& e);
  std::string describe() const override;
  int64_t flops(const Shape& in) const override;
  std::vector<NamedParameter> params() override;
  void init(Init scheme, Rng& rng) override;

  const Conv2dOptions& options() const { return options_; }
  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }  // empty tensors when options.bias is false

 private:
  // backward and backward_params: d_in null for the parameter gradients alone.
  void run_backward(Tensor* d_in, const Tensor& d_out, const Tensor& in);

  Conv2dOptions options_;
  Parameter weight_, bias_;
};

}  // namespace scratchnet
