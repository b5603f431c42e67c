// layer.h — the interface every layer implements, and the pieces layers share.
//
// A layer is built from an options struct, knows the shape it produces for a given input
// shape, and runs on whole batches:
//
//   output_shape(in)   the output shape for input shape `in` (batch dimension included), or
//                      throws scratchnet::Error naming the layer, the shape it got and the
//                      shape it needs. Sequential adds the layer's index to the message.
//   forward(out, in, mode)
//                      writes `out` (already sized to output_shape(in.shape())). May keep
//                      what backward needs (a mask, argmax indices, batch statistics).
//   backward(d_in, d_out, in, out)
//                      called after forward on the same `in`; writes the gradient with
//                      respect to the input into `d_in` (sized like `in`) and ADDS the
//                      parameter gradients into each Parameter's `grad`.
//   backward_params(d_out, in, out)
//                      optional: backward's parameter gradients alone, for a model's first
//                      layer, whose input needs no gradient; false, having done nothing,
//                      when the layer has no such path (Conv2d and Linear have one).
//   params()           the learnable tensors under PyTorch state_dict names ("weight",
//                      "bias"); Sequential prefixes the layer index ("3.weight").
//   buffers()          other state saved with the model ("running_mean", "running_var").
//   describe()         one line: "Conv2d(1, 32, kernel=3, stride=1, padding=0)".
//   flops(in)          floating-point operations of one forward pass on input shape `in`
//                      (a multiply-add counts as 2).
//   init(scheme, rng)  draws the initial parameters.
//   prepare()          after its tensors were loaded (model files call it): checks them and
//                      builds what is derived from them (int8 layers pack their weights), or
//                      throws naming the tensor and what is wrong.
//   forward_relu(out, in, mode)
//                      optional: forward followed by ReLU in one pass, with the values of the
//                      two in turn; false when the layer has no such path. A layer that has
//                      one must not read `out` in backward (Sequential skips writing it).
//   commutes_with_relu()
//                      true when ReLU then the layer gives the values and input gradient of
//                      the layer then ReLU (max-pool), so that Sequential may run the pair as
//                      forward_relu.
//   reshapes(mode)     true when forward in `mode` gives the input's values in order, only
//                      the shape changing, and backward the gradient's likewise (Flatten;
//                      Dropout in eval mode), so that Sequential may hand values over
//                      without a copy.
//
// Mode::kTrain and Mode::kEval follow PyTorch's module.train() / module.eval(): dropout
// and batch statistics act only in training.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "scratchnet/rng.h"
#include "scratchnet/tensor.h"

namespace scratchnet {

enum class Mode { kTrain, kEval };

// Weight initialisation schemes.
//   kPyTorch: PyTorch's defaults for Conv2d and Linear: weight ~ U(-b, b) with
//             b = 1/sqrt(fan_in) (Kaiming-uniform with a = sqrt(5)), bias ~ U(-1/sqrt(fan_in),
//             1/sqrt(fan_in)).
//   kGlorot:  Keras's default: weight ~ U(-b, b) with b = sqrt(6 / (fan_in + fan_out)),
//             bias = 0.
// fan_in = in_channels * K * K (or in_features); fan_out = out_channels * K * K.
enum class Init { kPyTorch, kGlorot };

// Fills weight (and bias, if not empty) by `scheme` for the given fans.
void init_weight_and_bias(Tensor& weight, Tensor* bias, int64_t fan_in, int64_t fan_out,
                          Init scheme, Rng& rng);

// A learnable tensor, its gradient (same shape) and whether optimisers may change it.
struct Parameter {
  Tensor value;
  Tensor grad;
  bool trainable = true;

  Parameter() = default;
  explicit Parameter(Shape shape) : value(shape), grad(shape) {}
};

struct NamedParameter {
  std::string name;
  Parameter* param;
};

struct NamedBuffer {
  std::string name;
  Tensor* tensor;
  bool int8 = false;  // integer values in [-128, 127], stored as I8 in model files
};

class Layer {
 public:
  virtual ~Layer() = default;

  virtual std::string kind() const = 0;  // "Conv2d"
  virtual Shape output_shape(const Shape& in) const = 0;
  virtual void forward(Tensor& out, const Tensor& in, Mode mode) = 0;
  virtual void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) = 0;
  virtual bool backward_params(const Tensor& /*d_out*/, const Tensor& /*in*/,
                               const Tensor& /*out*/) {
    return false;
  }
  virtual std::string describe() const = 0;
  virtual int64_t flops(const Shape& in) const = 0;

  virtual std::vector<NamedParameter> params() { return {}; }
  virtual std::vector<NamedBuffer> buffers() { return {}; }
  virtual void init(Init /*scheme*/, Rng& /*rng*/) {}
  virtual void prepare() {}
  virtual bool forward_relu(Tensor& /*out*/, const Tensor& /*in*/, Mode /*mode*/) { return false; }
  virtual bool commutes_with_relu() const { return false; }
  virtual bool reshapes(Mode /*mode*/) const { return false; }
};

// Throws "<kind>: expects <what>, got input of shape <in>" — the common shape complaint.
[[noreturn]] void fail_input_shape(const std::string& kind, const std::string& what,
                                   const Shape& in);

}  // namespace scratchnet
