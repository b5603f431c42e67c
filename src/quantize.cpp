// quantize.cpp — calibration, BatchNorm folding and int8 weights (quantize.h).
#include "scratchnet/quantize.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "scratchnet/check.h"
#include "scratchnet/data/loader.h"
#include "scratchnet/layers/batch_norm.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/conv2d_int8.h"
#include "scratchnet/layers/linear.h"
#include "scratchnet/layers/linear_int8.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/rng.h"

namespace scratchnet {

using json = nlohmann::json;

namespace {

struct Range {
  float min = 0, max = 0;  // starts at 0: the range always holds it
};

// Conv2d and Linear layers, but a convolution with fewer than kMinTaps multiply-adds per output
// (a first layer on one channel) stays float: converting its input and output would cost
// more than the int8 products save.
constexpr int64_t kMinTaps = 32;
bool quantizable(const Layer& l) {
  if (auto* conv = dynamic_cast<const Conv2d*>(&l)) {
    const Conv2dOptions& o = conv->options();
    return o.in_channels * o.kernel * o.kernel >= kMinTaps;
  }
  return l.kind() == "Linear";
}

// The BatchNorm folded into layer i, or null.
BatchNorm* folded_batch_norm(Sequential& model, size_t i) {
  if (i + 1 >= model.size() || !quantizable(model.layer(i))) return nullptr;
  const std::string kind = model.layer(i).kind(), next = model.layer(i + 1).kind();
  if ((kind == "Conv2d" && next == "BatchNorm2d") || (kind == "Linear" && next == "BatchNorm1d"))
    return dynamic_cast<BatchNorm*>(&model.layer(i + 1));
  return nullptr;
}

// The range of the input of every quantizable layer over `count` random items of `set`.
std::vector<Range> calibrate(Sequential& model, const Dataset& set, const Preprocess& preprocess,
                             const QuantizeOptions& o) {
  std::vector<int64_t> order(set.size());
  std::iota(order.begin(), order.end(), 0);
  Rng rng(o.seed);
  const int64_t count = std::min(o.calibration_images, set.size());
  for (int64_t i = 0; i < count; ++i)  // a partial Fisher-Yates shuffle: the first `count`
    std::swap(order[i], order[i + rng.below(set.size() - i)]);

  std::vector<Range> ranges(model.size());
  Tensor x, a, b;
  for (int64_t start = 0; start < count; start += o.batch_size) {
    const int64_t n = std::min(o.batch_size, count - start);
    make_batch(x, set, order.data() + start, n, preprocess);
    const Tensor* in = &x;
    for (size_t i = 0; i < model.size(); ++i) {
      if (quantizable(model.layer(i))) {
        auto [lo, hi] = std::minmax_element(in->begin(), in->end());
        ranges[i].min = std::min(ranges[i].min, *lo);
        ranges[i].max = std::max(ranges[i].max, *hi);
      }
      Tensor& out = in == &a ? b : a;
      Shape shape = model.output_shape(i);
      shape.insert(shape.begin(), n);
      out.resize(shape);
      model.layer(i).forward(out, *in, Mode::kEval);
      in = &out;
    }
  }
  return ranges;
}

// Layer i's weight (OUT, ...) and bias (OUT) with `bn` folded in, into the int8 layer's `q`.
void quantize_weights(Int8Weights& q, const Tensor& weight, const Tensor* bias, BatchNorm* bn,
                      const Range& range) {
  const int64_t outs = weight.dim(0), k = weight.numel() / outs;
  for (int64_t o = 0; o < outs; ++o) {
    double g = 1, b = bias ? bias->data()[o] : 0;
    if (bn) {
      g = bn->weight().value.data()[o] /
          std::sqrt(double(bn->running_var().data()[o]) + bn->options().eps);
      b = (b - bn->running_mean().data()[o]) * g + bn->bias().value.data()[o];
    }
    const float* w = weight.data() + o * k;
    double max_abs = 0;
    for (int64_t j = 0; j < k; ++j) max_abs = std::max(max_abs, std::abs(w[j] * g));
    const double scale = max_abs > 0 ? max_abs / 127 : 1;
    for (int64_t j = 0; j < k; ++j)
      q.weight.data()[o * k + j] = static_cast<float>(std::nearbyint(w[j] * g / scale));
    q.weight_scale.data()[o] = static_cast<float>(scale);
    q.bias.data()[o] = static_cast<float>(b);
  }
  const float span = range.max - range.min;
  const float s = span > 0 ? span / 255 : 1;
  q.input_scale.data()[0] = s;
  q.input_zero_point.data()[0] = std::clamp(std::nearbyint(-range.min / s), 0.0f, 255.0f);
}

// Copies every parameter and buffer of `from` into `to` (the same kind of layer).
void copy_tensors(Layer& to, Layer& from) {
  auto from_params = from.params();
  auto to_params = to.params();
  for (size_t i = 0; i < to_params.size(); ++i)
    to_params[i].param->value = from_params.at(i).param->value;
  auto from_buffers = from.buffers();
  auto to_buffers = to.buffers();
  for (size_t i = 0; i < to_buffers.size(); ++i) *to_buffers[i].tensor = *from_buffers.at(i).tensor;
}

}  // namespace

Sequential quantize_int8(Sequential& model, const Dataset& calibration,
                         const Preprocess& preprocess, const QuantizeOptions& options) {
  SN_CHECK(model.built(), "quantize_int8: the model is not built");
  SN_CHECK(calibration.size() > 0, "quantize_int8: the calibration set {} is empty",
           calibration.source);
  SN_CHECK(options.calibration_images > 0 && options.batch_size > 0,
           "quantize_int8: calibration_images and batch_size must be positive, got {} and {}",
           options.calibration_images, options.batch_size);
  SN_CHECK(calibration.sample_shape() == model.input_shape(),
           "quantize_int8: the calibration set {} has images of shape {}, the model takes {}",
           calibration.source, shape_str(calibration.sample_shape()),
           shape_str(model.input_shape()));
  const std::vector<Range> ranges = calibrate(model, calibration, preprocess, options);

  // The int8 architecture: the spec with Conv2d / Linear renamed and folded BatchNorms dropped.
  json spec = json::parse(model_to_spec(model));
  json layers = json::array();
  std::vector<size_t> source;  // the float layer each int8-model layer comes from
  for (size_t i = 0; i < model.size(); ++i) {
    json l = spec["layers"][i];
    if (quantizable(model.layer(i))) {
      l["type"] = model.layer(i).kind() + "Int8";
      l.erase("bias");
    }
    layers.push_back(l);
    source.push_back(i);
    if (folded_batch_norm(model, i)) ++i;
  }
  spec["layers"] = layers;
  Sequential q = model_from_spec(spec.dump(), "int8 model");

  for (size_t j = 0; j < q.size(); ++j) {
    const size_t i = source[j];
    Layer& from = model.layer(i);
    if (!quantizable(from)) {
      copy_tensors(q.layer(j), from);
    } else if (auto* conv = dynamic_cast<Conv2d*>(&from)) {
      quantize_weights(static_cast<Conv2dInt8&>(q.layer(j)).weights(), conv->weight().value,
                       conv->options().bias ? &conv->bias().value : nullptr,
                       folded_batch_norm(model, i), ranges[i]);
    } else if (auto* linear = dynamic_cast<Linear*>(&from)) {
      quantize_weights(static_cast<LinearInt8&>(q.layer(j)).weights(), linear->weight().value,
                       linear->options().bias ? &linear->bias().value : nullptr,
                       folded_batch_norm(model, i), ranges[i]);
    }
    q.layer(j).prepare();
  }
  return q;
}

}  // namespace scratchnet
