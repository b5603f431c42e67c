// model.h — Sequential: layers applied in order, built for a per-sample input shape.
//
//   Sequential model;
//   model.add(Conv2d({.in_channels = 1, .out_channels = 32, .kernel = 3}))
//        .add(ReLU())
//        ...;
//   model.build({1, 28, 28});            // infers every shape; throws at the first mismatch
//   model.init(Init::kPyTorch, seed);
//   const Tensor& logits = model.forward(x, Mode::kTrain);   // x (N, 1, 28, 28)
//   model.zero_grad();
//   model.backward(d_logits);            // adds into every parameter's grad
//
// Like torch.nn.Sequential, parameters and buffers are named "<index>.<name>" ("0.weight",
// "1.running_mean"), so weights move to and from PyTorch state_dicts unchanged.
// Activation and gradient buffers are sized once per batch size and then reused: a training
// loop allocates nothing. forward keeps a pointer to `x`; it must stay alive until backward.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "scratchnet/layer.h"

namespace scratchnet {

struct Conv2dBackwardFusion;

class Sequential {
 public:
  Sequential() = default;
  Sequential(Sequential&&) = default;
  Sequential& operator=(Sequential&&) = default;

  Sequential& add(std::unique_ptr<Layer> layer);
  template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer, L>>>
  Sequential& add(L layer) {
    return add(std::make_unique<L>(std::move(layer)));
  }

  // Puts `layer` in place of layer i; the model must be built again.
  void replace(size_t i, std::unique_ptr<Layer> layer);
  size_t size() const { return layers_.size(); }
  Layer& layer(size_t i) { return *layers_.at(i); }
  const Layer& layer(size_t i) const { return *layers_.at(i); }

  // Infers the output shape of every layer for inputs of shape (N, sample_shape...).
  // Throws "layer 7 Linear: expects 3136 input features, got 12544 ..." on a mismatch.
  void build(const Shape& sample_shape);
  bool built() const { return !out_shapes_.empty() || layers_.empty(); }
  const Shape& input_shape() const { return sample_shape_; }  // per sample, no N
  Shape output_shape(size_t i) const;                         // per sample, after layer i

  // x (N, sample_shape...) -> output of the last layer (N, ...). In training mode every
  // layer's output is kept for backward (x must outlive it); in eval mode two buffers take
  // turns, so inference needs memory for two activations only. Buffers are reused across
  // calls; the result is valid until the next forward.
  const Tensor& forward(const Tensor& x, Mode mode);
  // d_out like forward's result -> gradient for x, after a forward in training mode.
  // Adds into parameter grads. With down_to > 0 the layers below layer down_to are skipped
  // (when they are frozen, their gradients are not needed) and the result is the gradient
  // for layer down_to's input. With input_grad false (a training step) that last gradient
  // is skipped where the layer allows (Layer::backward_params) and the result is empty.
  const Tensor& backward(const Tensor& d_out, size_t down_to = 0, bool input_grad = true);

  std::vector<NamedParameter> params();
  std::vector<NamedBuffer> buffers();
  void zero_grad();
  void init(Init scheme, uint64_t seed);  // every layer, in order, from one stream

  int64_t num_params() const;
  int64_t flops_per_sample() const;  // forward pass, one sample
  // A table like Keras's model.summary(): index, layer, output shape, parameters, FLOPs.
  std::string summary() const;

 private:
  void plan(int64_t batch);  // activations for a training forward
  void plan_gradients();     // their gradients, on the first backward
  static Shape batched(int64_t n, const Shape& sample);
  enum class Fused : uint8_t {
    kNone,
    kReluFirst,
    kReluAfter,
    kNormReluPool,
    kReshape,
    kReshapeBack
  };
  Fused forward_pair(size_t i, size_t last, Tensor& out, const Tensor& in, Mode mode);
  bool forward_norm_pool(size_t i, const Tensor& in);
  size_t conv_backward(size_t i, size_t down_to, bool input_grad, const Tensor& d_out,
                       Conv2dBackwardFusion fusion);
  void plan_eval_chunks();  // eval_chunk_ and eval_split_, at build
  // What an eval forward's chunk works in: its input and two outputs taking turns.
  struct EvalBuffers {
    Tensor in, acts[2];
  };
  const Tensor& eval_forward(const Tensor& x);
  const Tensor& eval_layers(const Tensor& x, size_t first, size_t last, EvalBuffers& buf);
  size_t eval_block_size(size_t i, size_t last, const Shape& in) const;
  bool eval_chunks_stateless() const;
  size_t eval_block(size_t i, size_t last, Tensor& out, const Tensor& in);
  // A chunk of an eval forward holds about this many floats of the largest activation.
  static constexpr int64_t kEvalChunkFloats = int64_t{1} << 20;

  std::vector<std::unique_ptr<Layer>> layers_;
  Shape sample_shape_;
  std::vector<Shape> out_shapes_;          // per sample, one per layer
  std::vector<Tensor> acts_;               // acts_[i] output of layer i
  std::vector<Tensor> d_acts_;             // d_acts_[i] gradient for the input of layer i
  std::vector<EvalBuffers> eval_buffers_;  // one per thread that runs chunks
  Tensor eval_mid_;                        // the chunks' outputs
  int64_t eval_chunk_ = 0;                 // samples per chunk of a large eval batch
  size_t eval_split_ = 0;                  // layers [0, eval_split_) run in chunks
  // Those layers are fused blocks and reshapes only, which keep no state: the chunks run on
  // the threads side by side, each chunk's kernels on one thread.
  bool eval_chunks_apart_ = false;
  // Layer i and i + 1 ran as one in the last training forward: ReLU then a layer that
  // commutes with it, or a layer then ReLU; layer i's output was not written. kNormReluPool:
  // layers i to i + 2 (BatchNorm2d, ReLU, MaxPool2d), only the last one's output written.
  // kReshape: layer i only reshapes (Layer::reshapes: Flatten) and its output took its input's
  // values rather than a copy (acts_[i - 1] holds stale ones); its backward hands them back
  // (kReshapeBack), and a second backward after the same forward hands them over again first.
  std::vector<Fused> fused_;
  Tensor relu_grad_;               // ReLU's gradient inside a kReluFirst pair
  const Tensor* input_ = nullptr;  // the last training forward's input
  int64_t batch_ = -1, grad_batch_ = -1;
};

}  // namespace scratchnet
