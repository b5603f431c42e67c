#include "scratchnet/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>

#include "scratchnet/check.h"
#include "scratchnet/layers/batch_norm.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/max_pool2d.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {

// a and b, of the same size, trade their values; each keeps its shape.
void trade_storage(Tensor& a, Tensor& b) {
  Shape a_shape = a.shape(), b_shape = b.shape();
  std::swap(a, b);
  a.reshape(std::move(a_shape));
  b.reshape(std::move(b_shape));
}

}  // namespace

Sequential& Sequential::add(std::unique_ptr<Layer> layer) {
  SN_CHECK(layer != nullptr, "Sequential::add: layer is null");
  layers_.push_back(std::move(layer));
  out_shapes_.clear();  // needs building again
  batch_ = grad_batch_ = -1;
  return *this;
}

void Sequential::replace(size_t i, std::unique_ptr<Layer> layer) {
  SN_CHECK(i < layers_.size(), "Sequential::replace: no layer {} in a model of {}", i,
           layers_.size());
  SN_CHECK(layer != nullptr, "Sequential::replace: layer is null");
  layers_[i] = std::move(layer);
  out_shapes_.clear();  // needs building again
  batch_ = grad_batch_ = -1;
}

Shape Sequential::batched(int64_t n, const Shape& sample) {
  Shape s{n};
  s.insert(s.end(), sample.begin(), sample.end());
  return s;
}

namespace {
// "(N, 1, 28, 28)" for the per-sample shape (1, 28, 28).
std::string with_n(const Shape& sample) {
  std::string rest = shape_str(sample).substr(1);
  return sample.empty() ? "(N)" : "(N, " + rest;
}
}  // namespace

void Sequential::build(const Shape& sample_shape) {
  SN_CHECK(!layers_.empty(), "cannot build an empty model: add at least one layer");
  SN_CHECK(shape_numel(sample_shape) > 0, "model input shape {} has no elements",
           shape_str(sample_shape));
  std::vector<Shape> shapes;
  Shape cur = batched(1, sample_shape);
  for (size_t i = 0; i < layers_.size(); ++i) {
    try {
      cur = layers_[i]->output_shape(cur);
    } catch (const Error& e) {
      fail("layer {} {}", i, e.what());
    }
    SN_CHECK(!cur.empty() && cur[0] == 1, "layer {} {} changed the batch dimension", i,
             layers_[i]->kind());
    shapes.emplace_back(cur.begin() + 1, cur.end());
  }
  sample_shape_ = sample_shape;
  out_shapes_ = std::move(shapes);
  batch_ = grad_batch_ = -1;
  plan_eval_chunks();
}

// A large eval batch runs in chunks of samples through the layers with big activations and
// small weights (the convolutions), so that activations stay in cache rather than each layer
// streaming the whole batch's through memory; from the first layer whose weights outweigh a
// chunk's input (the first big Linear) on, the whole batch at once, so those weights are
// read (and packed) once.
void Sequential::plan_eval_chunks() {
  int64_t largest = shape_numel(sample_shape_);
  for (const Shape& s : out_shapes_) largest = std::max(largest, shape_numel(s));
  eval_chunk_ = std::clamp<int64_t>(kEvalChunkFloats / largest, 8, 256);
  eval_split_ = 0;
  for (Shape in = sample_shape_; eval_split_ < layers_.size(); in = out_shapes_[eval_split_++]) {
    int64_t weights = 0;
    for (auto& p : layers_[eval_split_]->params()) weights += p.param->value.numel();
    if (weights > eval_chunk_ * shape_numel(in)) break;
  }
  eval_chunks_apart_ = eval_split_ > 0 && eval_chunks_stateless();
}

// Whether the layers run in chunks (as eval_layers runs them) keep no state in eval mode:
// fused blocks, ReLU then max-pool as a pair, Conv2d, BatchNorm2d (which records the mode of
// its last forward only when it changes, so once the first chunk ran), ReLU, and the layers
// that only reshape (Layer::reshapes: Flatten, Dropout).
bool Sequential::eval_chunks_stateless() const {
  Shape in = batched(eval_chunk_, sample_shape_);
  for (size_t i = 0; i < eval_split_;) {
    size_t step = eval_block_size(i, eval_split_, in);
    const std::string kind = layers_[i]->kind();
    if (step == 0 && kind == "ReLU" && i + 1 < eval_split_ && layers_[i + 1]->kind() == "MaxPool2d")
      step = 2;
    if (step == 0 && (kind == "Conv2d" || kind == "BatchNorm2d" || kind == "ReLU" ||
                      (layers_[i]->reshapes(Mode::kEval) && i > 0)))
      step = 1;
    if (step == 0) return false;
    i += step;
    in = batched(eval_chunk_, out_shapes_[i - 1]);
  }
  return true;
}

Shape Sequential::output_shape(size_t i) const {
  SN_CHECK(built(), "model is not built: call build(input_shape) first");
  return out_shapes_.at(i);
}

void Sequential::plan(int64_t batch) {
  if (batch == batch_) return;
  acts_.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) acts_[i].resize(batched(batch, out_shapes_[i]));
  batch_ = batch;
}

void Sequential::plan_gradients() {
  if (grad_batch_ == batch_) return;
  d_acts_.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i)
    d_acts_[i].resize(batched(batch_, i == 0 ? sample_shape_ : out_shapes_[i - 1]));
  grad_batch_ = batch_;
}

const Tensor& Sequential::forward(const Tensor& x, Mode mode) {
  SN_CHECK(built() && !layers_.empty(), "model is not built: call build(input_shape) first");
  SN_CHECK(x.ndim() == static_cast<int>(sample_shape_.size()) + 1 && x.dim(0) >= 1 &&
               Shape(x.shape().begin() + 1, x.shape().end()) == sample_shape_,
           "model input: expected shape {}, got {}", with_n(sample_shape_), shape_str(x.shape()));
  const Tensor* in = &x;
  if (mode == Mode::kEval) {
    input_ = nullptr;
    return eval_forward(x);
  }
  plan(x.dim(0));
  input_ = &x;
  // BatchNorm2d, ReLU, MaxPool2d run as one (forward_norm_pool), pairs with ReLU as one
  // (forward_pair), and a layer that only reshapes (Flatten) takes its input's values without
  // a copy; backward knows them by fused_.
  fused_.assign(layers_.size(), Fused::kNone);
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (forward_norm_pool(i, *in)) {
      fused_[i] = Fused::kNormReluPool;
      in = &acts_[i += 2];
      continue;
    }
    if (i > 0 && i + 1 < layers_.size() && layers_[i]->reshapes(mode)) {  // no copy
      trade_storage(acts_[i], acts_[i - 1]);
      fused_[i] = Fused::kReshape;
      in = &acts_[i];
      continue;
    }
    if (i + 1 < layers_.size()) {
      fused_[i] = forward_pair(i, layers_.size(), acts_[i + 1], *in, mode);
      if (fused_[i] != Fused::kNone) {
        in = &acts_[++i];
        continue;
      }
    }
    layers_[i]->forward(acts_[i], *in, mode);
    in = &acts_[i];
  }
  return acts_.back();
}

const Tensor& Sequential::eval_forward(const Tensor& x) {
  const int64_t n = x.dim(0), chunk = eval_chunk_;
  const size_t split = eval_split_;  // layers [0, split) run in chunks
  const size_t slots = eval_chunks_apart_ ? static_cast<size_t>(num_threads()) : 1;
  if (eval_buffers_.size() < slots) eval_buffers_.resize(slots);
  if (n <= chunk || split == 0) return eval_layers(x, 0, layers_.size(), eval_buffers_[0]);
  const int64_t in_size = x.numel() / n, mid_size = shape_numel(out_shapes_[split - 1]);
  const int64_t chunks = (n + chunk - 1) / chunk;
  eval_mid_.resize(batched(n, out_shapes_[split - 1]));
  auto run_chunk = [&](int64_t q, EvalBuffers& buf) {
    const int64_t s0 = q * chunk, count = std::min(chunk, n - s0);
    buf.in.resize(batched(count, sample_shape_));
    std::copy(x.data() + s0 * in_size, x.data() + (s0 + count) * in_size, buf.in.data());
    const Tensor& mid = eval_layers(buf.in, 0, split, buf);
    std::copy(mid.data(), mid.data() + count * mid_size, eval_mid_.data() + s0 * mid_size);
  };
  if (slots > 1) {
    // The first chunk alone (its kernels on all threads: the layers record what they record
    // once), then one slot per thread, each taking the next chunk until none is left, its
    // kernels on that thread: a thread the machine slows down takes fewer chunks.
    run_chunk(0, eval_buffers_[0]);
    std::atomic<int64_t> next{1};
    parallel_for(static_cast<int64_t>(slots), [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t)
        for (int64_t q; (q = next.fetch_add(1, std::memory_order_relaxed)) < chunks;)
          run_chunk(q, eval_buffers_[static_cast<size_t>(t)]);
    });
  } else {
    for (int64_t q = 0; q < chunks; ++q) run_chunk(q, eval_buffers_[0]);
  }
  return split == layers_.size() ? eval_mid_
                                 : eval_layers(eval_mid_, split, layers_.size(), eval_buffers_[0]);
}

// Layers i and i + 1 (before `last`) as one into out (layer i + 1's output), when one of
// them is ReLU and the other can take it (forward_relu); kNone, having run nothing, otherwise.
// When the ReLU after layer i is followed by a layer that commutes with it (max-pool), it is
// left to pair with that one: ReLU then runs on the pooled quarter, and training skips a
// full-size ReLU backward.
Sequential::Fused Sequential::forward_pair(size_t i, size_t last, Tensor& out, const Tensor& in,
                                           Mode mode) {
  Layer& layer = *layers_[i];
  Layer& after = *layers_[i + 1];
  if (layer.kind() == "ReLU" && after.commutes_with_relu())
    return after.forward_relu(out, in, mode) ? Fused::kReluFirst : Fused::kNone;
  if (after.kind() == "ReLU" && !(i + 2 < last && layers_[i + 2]->commutes_with_relu()))
    return layer.forward_relu(out, in, mode) ? Fused::kReluAfter : Fused::kNone;
  return Fused::kNone;
}

// BatchNorm2d, ReLU and MaxPool2d from layer i as one in training (BatchNorm::train_relu_pool),
// into acts_[i + 2]; false, having run nothing, when they are not such a block or the batch
// norm does not use the batch statistics.
bool Sequential::forward_norm_pool(size_t i, const Tensor& in) {
  if (i + 2 >= layers_.size() || layers_[i]->kind() != "BatchNorm2d" ||
      layers_[i + 1]->kind() != "ReLU")
    return false;
  auto* bn = dynamic_cast<BatchNorm*>(layers_[i].get());
  auto* pool = dynamic_cast<MaxPool2d*>(layers_[i + 2].get());
  return bn && pool && bn->train_relu_pool(acts_[i + 2], *pool, in);
}

// How many layers from layer i (before `last`) make a fused eval block on input shape `in`:
// Conv2d, perhaps BatchNorm2d, ReLU and perhaps MaxPool2d(2) (Conv2d::forward_eval_fused);
// 0 when they are not such a block or the convolution has no fused path for this shape.
size_t Sequential::eval_block_size(size_t i, size_t last, const Shape& in) const {
  const auto* conv = dynamic_cast<const Conv2d*>(layers_[i].get());
  if (!conv || i + 1 >= last || !conv->has_eval_fused(in)) return 0;
  size_t count = layers_[i + 1]->kind() == "BatchNorm2d" ? 2 : 1;  // layers so far
  if (i + count >= last || layers_[i + count]->kind() != "ReLU") return 0;
  ++count;
  const auto* pool =
      i + count < last ? dynamic_cast<const MaxPool2d*>(layers_[i + count].get()) : nullptr;
  return count + (pool && pool->options().kernel == 2 && pool->options().stride == 2 &&
                  pool->options().padding == 0);
}

// The block eval_block_size finds at layer i, run into out; how many layers ran (0: none).
size_t Sequential::eval_block(size_t i, size_t last, Tensor& out, const Tensor& in) {
  const size_t count = eval_block_size(i, last, in.shape());
  if (count == 0) return 0;
  auto& conv = dynamic_cast<Conv2d&>(*layers_[i]);
  auto* bn = layers_[i + 1]->kind() == "BatchNorm2d"
                 ? dynamic_cast<BatchNorm*>(layers_[i + 1].get())
                 : nullptr;
  Conv2dEpilogue e{.pool = layers_[i + count - 1]->kind() == "MaxPool2d"};
  thread_local std::vector<float> epilogue;  // the BatchNorm's center, scale, shift
  if (bn) {
    const int64_t channels = conv.options().out_channels;
    epilogue.resize(static_cast<size_t>(3 * channels));
    e.center = epilogue.data();
    e.scale = e.center + channels;
    e.shift = e.center + 2 * channels;
    bn->eval_affine(epilogue.data(), epilogue.data() + channels, epilogue.data() + 2 * channels);
  }
  out.resize(batched(in.dim(0), out_shapes_[i + count - 1]));
  conv.forward_eval_fused(out, in, e);
  return count;
}

// Layers [first, last) on x. Nothing is kept for a backward pass: two buffers take turns.
// Conv2d, (BatchNorm2d,) ReLU (and MaxPool2d(2)) run as one where the convolution can
// (eval_block); a layer followed by ReLU runs both in one pass where it can (forward_relu),
// ReLU followed by a layer that commutes with it (max-pool) runs as that layer then ReLU on
// its smaller output, and the layers that only reshape (Layer::reshapes: Flatten, Dropout in
// eval mode) hand their input over. The values are those of running the layers one by one.
const Tensor& Sequential::eval_layers(const Tensor& x, size_t first, size_t last,
                                      EvalBuffers& buf) {
  const int64_t n = x.dim(0);
  const Tensor* in = &x;
  int next = 0;  // buf.acts[next] takes the next output
  for (size_t i = first; i < last;) {
    Tensor& out = buf.acts[next];
    Layer& layer = *layers_[i];
    if (const size_t ran = eval_block(i, last, out, *in)) {
      i += ran;
      in = &out;
      next = 1 - next;
      continue;
    }
    bool fused = false;  // layers i and i + 1 as one
    if (i + 1 < last) {
      out.resize(batched(n, out_shapes_[i + 1]));
      fused = forward_pair(i, last, out, *in, Mode::kEval) != Fused::kNone;
    }
    if (fused) {
      i += 2;
    } else if (layer.reshapes(Mode::kEval) && in != &x) {
      buf.acts[1 - next].reshape(batched(n, out_shapes_[i]));  // `in`, kept as it is
      i += 1;
      continue;
    } else {
      out.resize(batched(n, out_shapes_[i]));
      layer.forward(out, *in, Mode::kEval);
      i += 1;
    }
    in = &out;
    next = 1 - next;
  }
  return *in;
}

// Layer i, a Conv2d, backward from d_out, or from the gradient fusion.fill makes sample by
// sample; when its input came out of a ReLU whose pair ran as one (kReluAfter) and the
// backward goes on below that ReLU, its backward too (Conv2dBackwardFusion::relu_in). The
// input gradient goes to d_acts_[i] (unless layer i is down_to and !input_grad); returns the
// lowest layer whose backward ran (i, or the ReLU's).
size_t Sequential::conv_backward(size_t i, size_t down_to, bool input_grad, const Tensor& d_out,
                                 Conv2dBackwardFusion fusion) {
  auto& conv = dynamic_cast<Conv2d&>(*layers_[i]);
  const Tensor& in = i == 0 ? *input_ : acts_[i - 1];
  const bool d_in = i > down_to || input_grad;
  fusion.relu_in = i >= 2 && i - 2 >= down_to && fused_[i - 2] == Fused::kReluAfter;
  conv.backward_fused(d_in ? &d_acts_[i] : nullptr, d_out, in, fusion);
  if (!fusion.relu_in) return i;
  trade_storage(d_acts_[i - 1], d_acts_[i]);  // the ReLU's input gradient, where it would be
  return i - 1;
}

const Tensor& Sequential::backward(const Tensor& d_out, size_t down_to, bool input_grad) {
  static const Tensor kNoGradient;
  SN_CHECK(input_ != nullptr,
           "backward called before forward (or after a forward in eval mode, which keeps no "
           "activations)");
  check_shape(d_out, acts_.back().shape(), "model backward: gradient of the output");
  plan_gradients();
  const Tensor* d = &d_out;
  SN_CHECK(down_to < layers_.size(), "model backward: no layer {} to stop at in a model of {}",
           down_to, layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i)  // a backward before: Flatten's output again
    if (fused_[i] == Fused::kReshapeBack) {
      trade_storage(acts_[i], acts_[i - 1]);
      fused_[i] = Fused::kReshape;
    }
  for (size_t i = layers_.size(); i-- > down_to;) {
    if (i >= 2 && fused_[i - 2] == Fused::kNormReluPool) {
      const size_t f = i - 2;
      auto& bn = dynamic_cast<BatchNorm&>(*layers_[f]);
      const Tensor& bn_in = f == 0 ? *input_ : acts_[f - 1];
      const auto& pool = dynamic_cast<const MaxPool2d&>(*layers_[i]);
      if (down_to < f && layers_[f - 1]->kind() == "Conv2d") {  // the three inside its backward
        Conv2dBackwardFusion fusion{.fill = bn.backward_relu_pool_params(*d, pool, bn_in, acts_[i]),
                                    .room = d_acts_[f].data()};
        i = conv_backward(f - 1, down_to, input_grad, d_acts_[f], std::move(fusion));
        if (i == down_to && !input_grad) return kNoGradient;
        d = &d_acts_[i];
        continue;
      }
      if (down_to <= f) {  // through the three at once
        bn.backward_relu_pool(d_acts_[f], *d, pool, bn_in, acts_[i]);
        d = &d_acts_[f];
        i = f;
        continue;
      }
      // Stopping between them: their outputs, one by one (the pool finds its winners again).
      bn.unpooled_output(acts_[f], bn_in);
      layers_[f + 1]->forward(acts_[f + 1], acts_[f], Mode::kTrain);
      layers_[i]->forward(acts_[i], acts_[f + 1], Mode::kTrain);
      fused_[f] = Fused::kNone;
    }
    if (fused_[i] == Fused::kReshape) {  // Flatten: its input's values back, then the gradient's
      trade_storage(acts_[i], acts_[i - 1]);
      fused_[i] = Fused::kReshapeBack;
      if (d == &d_acts_[i + 1] && (i > down_to || input_grad)) {
        trade_storage(d_acts_[i], d_acts_[i + 1]);
        d = &d_acts_[i];
        continue;
      }
    }
    const Tensor& in = i == 0 ? *input_ : acts_[i - 1];
    const size_t f = i - 1;  // the first layer of a pair ending at i
    if (i >= 1 && fused_[f] == Fused::kReluAfter) {
      // Layer f's output was not kept; ReLU's own output has its sign, zeros included.
      layers_[i]->backward(d_acts_[i], *d, acts_[i], acts_[i]);
      d = &d_acts_[i];
      continue;
    }
    if (i >= 1 && fused_[f] == Fused::kReluFirst) {
      const Tensor& pair_in = f == 0 ? *input_ : acts_[f - 1];
      if (down_to <= f) {  // through the pair at once: ReLU's gradient, then layer i's
        relu_grad_.resize(d->shape());
        layers_[f]->backward(relu_grad_, *d, acts_[i], acts_[i]);  // ReLU after layer i
        layers_[i]->backward(d_acts_[f], relu_grad_, pair_in, acts_[i]);
        d = &d_acts_[f];
        i = f;
        continue;
      }
      // Stopping between the two: the gradient for ReLU's output needs them one by one.
      layers_[f]->forward(acts_[f], pair_in, Mode::kTrain);
      layers_[i]->forward(acts_[i], acts_[f], Mode::kTrain);
      fused_[f] = Fused::kNone;
    }
    // A BatchNorm2d on the batch statistics just above the last layer, a Conv2d whose parameter
    // gradients alone are asked for: its backward channel by channel inside the convolution's.
    if (i == down_to + 1 && !input_grad && layers_[i]->kind() == "BatchNorm2d" &&
        layers_[down_to]->kind() == "Conv2d") {
      auto& bn = dynamic_cast<BatchNorm&>(*layers_[i]);
      if (bn.uses_batch_statistics()) {
        Conv2dBackwardFusion fusion{.fill_channel = bn.backward_by_channel(*d, in),
                                    .room = d_acts_[i].data()};
        conv_backward(down_to, down_to, input_grad, d_acts_[i], std::move(fusion));
        return kNoGradient;
      }
    }
    if (layers_[i]->kind() == "Conv2d") {
      i = conv_backward(i, down_to, input_grad, *d, {});
      if (i == down_to && !input_grad) return kNoGradient;
      d = &d_acts_[i];
      continue;
    }
    if (i == down_to && !input_grad) {
      if (layers_[i]->backward_params(*d, in, acts_[i]) || layers_[i]->params().empty())
        return kNoGradient;
    }
    layers_[i]->backward(d_acts_[i], *d, in, acts_[i]);
    d = &d_acts_[i];
  }
  return d_acts_[down_to];
}

std::vector<NamedParameter> Sequential::params() {
  std::vector<NamedParameter> all;
  for (size_t i = 0; i < layers_.size(); ++i)
    for (auto& p : layers_[i]->params()) all.push_back({fmt::format("{}.{}", i, p.name), p.param});
  return all;
}

std::vector<NamedBuffer> Sequential::buffers() {
  std::vector<NamedBuffer> all;
  for (size_t i = 0; i < layers_.size(); ++i)
    for (auto& b : layers_[i]->buffers())
      all.push_back({fmt::format("{}.{}", i, b.name), b.tensor, b.int8});
  return all;
}

void Sequential::zero_grad() {
  for (auto& p : params()) p.param->grad.zero();
}

void Sequential::init(Init scheme, uint64_t seed) {
  Rng rng(seed);
  for (auto& layer : layers_) layer->init(scheme, rng);
}

int64_t Sequential::num_params() const {
  int64_t n = 0;
  for (const auto& layer : layers_)
    for (auto& p : layer->params()) n += p.param->value.numel();
  return n;
}

int64_t Sequential::flops_per_sample() const {
  SN_CHECK(built(), "model is not built: call build(input_shape) first");
  int64_t total = 0;
  Shape in = batched(1, sample_shape_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    total += layers_[i]->flops(in);
    in = batched(1, out_shapes_[i]);
  }
  return total;
}

std::string Sequential::summary() const {
  SN_CHECK(built(), "model is not built: call build(input_shape) first");
  std::string s = fmt::format("{:>3}  {:<52} {:<18} {:>10} {:>12}\n", "#", "layer", "output shape",
                              "params", "FLOPs");
  Shape in = batched(1, sample_shape_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    int64_t n = 0;
    for (auto& p : layers_[i]->params()) n += p.param->value.numel();
    s += fmt::format("{:>3}  {:<52} {:<18} {:>10} {:>12}\n", i, layers_[i]->describe(),
                     with_n(out_shapes_[i]), n, layers_[i]->flops(in));
    in = batched(1, out_shapes_[i]);
  }
  s += fmt::format("input {}, {} parameters, {} FLOPs per sample (forward)\n",
                   with_n(sample_shape_), num_params(), flops_per_sample());
  return s;
}

}  // namespace scratchnet
