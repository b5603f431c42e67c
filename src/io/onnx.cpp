#include "scratchnet/io/onnx.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <bit>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/io/atomic_file.h"
#include "scratchnet/layers/avg_pool2d.h"
#include "scratchnet/layers/batch_norm.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/leaky_relu.h"
#include "scratchnet/layers/linear.h"
#include "scratchnet/layers/max_pool2d.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/train/recipe.h"

namespace scratchnet {

namespace {

static_assert(std::endian::native == std::endian::little,
              "ONNX raw_data is little-endian; this writer copies floats as they are in memory");

constexpr const char* kInputName = "input";
constexpr const char* kOutputName = "logits";
constexpr const char* kBatchDim = "batch";

// (batch, dims...) with the first dimension symbolic.
void set_type(onnx::ValueInfoProto& value, const std::string& name, const Shape& sample_shape) {
  value.set_name(name);
  onnx::TypeProto_Tensor* tensor = value.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = tensor->mutable_shape();
  shape->add_dim()->set_dim_param(kBatchDim);
  for (int64_t d : sample_shape) shape->add_dim()->set_dim_value(d);
}

void attr_int(onnx::NodeProto& node, const char* name, int64_t v) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void attr_ints(onnx::NodeProto& node, const char* name, const std::vector<int64_t>& v) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void attr_float(onnx::NodeProto& node, const char* name, float v) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

// The 2-D window attributes of Conv, MaxPool and AveragePool (square kernel, same stride and
// padding on every side).
void attr_window(onnx::NodeProto& node, int64_t kernel, int64_t stride, int64_t padding) {
  attr_ints(node, "kernel_shape", {kernel, kernel});
  attr_ints(node, "strides", {stride, stride});
  attr_ints(node, "pads", {padding, padding, padding, padding});
}

// Builds the graph layer by layer; `current_` names the tensor the next node reads.
class GraphWriter {
 public:
  GraphWriter(onnx::GraphProto& graph, Sequential& model) : graph_(graph), model_(model) {
    // The last layer that makes a node writes "logits"; a trailing Dropout makes none.
    for (size_t i = 0; i < model.size(); ++i)
      if (model.layer(i).kind() != "Dropout") last_ = static_cast<int64_t>(i);
  }

  void add_layer(size_t i) {
    Layer& layer = model_.layer(i);
    const std::string kind = layer.kind();
    const std::string p = fmt::format("{}.", i);  // state_dict prefix
    if (kind == "Conv2d") {
      auto& conv = as<Conv2d>(i);
      const Conv2dOptions& o = conv.options();
      std::vector<std::string> inputs = {current_, weight(p + "weight", conv.weight().value)};
      if (o.bias) inputs.push_back(weight(p + "bias", conv.bias().value));
      attr_window(node(i, "Conv", inputs), o.kernel, o.stride, o.padding);
    } else if (kind == "MaxPool2d") {
      const MaxPool2dOptions& o = as<MaxPool2d>(i).options();
      attr_window(node(i, "MaxPool", {current_}), o.kernel, o.stride, o.padding);
    } else if (kind == "AvgPool2d") {
      const AvgPool2dOptions& o = as<AvgPool2d>(i).options();
      if (o.padding > 0) pad(i, o.padding);
      onnx::NodeProto& n = node(i, "AveragePool", {current_});
      attr_window(n, o.kernel, o.stride, 0);
      attr_int(n, "count_include_pad", 1);
    } else if (kind == "ReLU" || kind == "Tanh" || kind == "Sigmoid") {
      node(i, kind == "ReLU" ? "Relu" : kind, {current_});
    } else if (kind == "LeakyReLU") {
      attr_float(node(i, "LeakyRelu", {current_}), "alpha",
                 as<LeakyReLU>(i).options().negative_slope);
    } else if (kind == "Flatten") {
      attr_int(node(i, "Flatten", {current_}), "axis", 1);
    } else if (kind == "Linear") {
      auto& linear = as<Linear>(i);
      std::vector<std::string> inputs = {current_, weight(p + "weight", linear.weight().value)};
      if (linear.options().bias) inputs.push_back(weight(p + "bias", linear.bias().value));
      attr_int(node(i, "Gemm", inputs), "transB", 1);
    } else if (kind == "BatchNorm2d" || kind == "BatchNorm1d") {
      auto& bn = as<BatchNorm>(i);
      onnx::NodeProto& n =
          node(i, "BatchNormalization",
               {current_, weight(p + "weight", bn.weight().value),
                weight(p + "bias", bn.bias().value), weight(p + "running_mean", bn.running_mean()),
                weight(p + "running_var", bn.running_var())});
      attr_float(n, "epsilon", bn.options().eps);
    } else if (kind == "Dropout") {
      // The identity in eval mode: no node.
    } else if (kind == "Softmax" || kind == "LogSoftmax") {
      attr_int(node(i, kind, {current_}), "axis", 1);
    } else {
      fail("layer {} {}: no ONNX export for this layer kind", i, kind);
    }
  }

  // When no layer made a node (only Dropout layers), "logits" is the input passed through.
  void finish() {
    if (last_ >= 0) return;
    onnx::NodeProto* n = graph_.add_node();
    n->set_name("identity");
    n->set_op_type("Identity");
    n->add_input(current_);
    n->add_output(kOutputName);
  }

 private:
  template <typename L>
  L& as(size_t i) {
    auto* layer = dynamic_cast<L*>(&model_.layer(i));
    SN_CHECK(layer != nullptr, "layer {} {}: not the layer class its kind names", i,
             model_.layer(i).kind());
    return *layer;
  }

  // A node reading `inputs` that writes layer i's output; the next node reads it.
  onnx::NodeProto& node(size_t i, const std::string& op, const std::vector<std::string>& inputs) {
    onnx::NodeProto* n = graph_.add_node();
    n->set_name(fmt::format("{}.{}", i, model_.layer(i).kind()));
    n->set_op_type(op);
    n->set_doc_string(model_.layer(i).describe());
    for (const std::string& in : inputs) n->add_input(in);
    const bool last = static_cast<int64_t>(i) == last_;
    current_ = last ? kOutputName : fmt::format("{}.out", i);
    n->add_output(current_);
    if (!last) set_type(*graph_.add_value_info(), current_, model_.output_shape(i));
    return *n;
  }

  // Zero padding of the spatial dimensions in front of layer i: (N, C, H, W) ->
  // (N, C, H + 2p, W + 2p).
  void pad(size_t i, int64_t padding) {
    const std::string pads = fmt::format("{}.pads", i);
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(pads);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(8);
    // ONNX order: begins of every axis, then ends; (N, C, H, W) pads only H and W.
    const int64_t values[] = {0, 0, padding, padding, 0, 0, padding, padding};
    for (int64_t v : values) t->add_int64_data(v);

    Shape in = i == 0 ? model_.input_shape() : model_.output_shape(i - 1);  // (C, H, W)
    SN_CHECK(in.size() == 3, "layer {} {}: expects (C, H, W) per sample, got {}", i,
             model_.layer(i).kind(), shape_str(in));
    onnx::NodeProto* n = graph_.add_node();
    n->set_name(fmt::format("{}.Pad", i));
    n->set_op_type("Pad");
    n->add_input(current_);
    n->add_input(pads);
    current_ = fmt::format("{}.padded", i);
    n->add_output(current_);
    set_type(*graph_.add_value_info(), current_, {in[0], in[1] + 2 * padding, in[2] + 2 * padding});
  }

  // A float initialiser under its state_dict name; returns the name.
  std::string weight(const std::string& name, const Tensor& value) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : value.shape()) t->add_dims(d);
    t->set_raw_data(value.data(), static_cast<size_t>(value.numel()) * sizeof(float));
    return name;
  }

  onnx::GraphProto& graph_;
  Sequential& model_;
  std::string current_ = kInputName;
  int64_t last_ = -1;
};

void add_metadata(onnx::ModelProto& proto, const std::string& key, const std::string& value) {
  if (value.empty()) return;
  onnx::StringStringEntryProto* e = proto.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

onnx::ModelProto build_model_proto(Sequential& model, const ModelInfo& info) {
  SN_CHECK(model.built(), "ONNX export: the model is not built (call build(input_shape) first)");
  SN_CHECK(model.size() > 0, "ONNX export: the model has no layers");

  onnx::ModelProto proto;
  proto.set_ir_version(kOnnxIrVersion);
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  proto.set_producer_name("scratchnet");

  onnx::GraphProto& graph = *proto.mutable_graph();
  graph.set_name("scratchnet");
  set_type(*graph.add_input(), kInputName, model.input_shape());
  GraphWriter writer(graph, model);
  for (size_t i = 0; i < model.size(); ++i) writer.add_layer(i);
  writer.finish();
  set_type(*graph.add_output(), kOutputName, model.output_shape(model.size() - 1));

  add_metadata(proto, "preprocess", preprocess_to_json(info.preprocess));
  add_metadata(proto, "class_names", nlohmann::json(info.class_names).dump());
  add_metadata(proto, "spec", model_to_spec(model));
  add_metadata(proto, "dataset", info.dataset);
  add_metadata(proto, "recipe", info.recipe);
  add_metadata(proto, "metrics", info.metrics);
  add_metadata(proto, "origin", info.origin);
  return proto;
}

}  // namespace

std::string onnx_model_bytes(Sequential& model, const ModelInfo& info) {
  std::string bytes;
  SN_CHECK(build_model_proto(model, info).SerializeToString(&bytes),
           "ONNX export: protobuf could not serialise the model");
  return bytes;
}

OnnxExportSummary export_onnx(const std::string& path, Sequential& model, const ModelInfo& info) {
  const onnx::ModelProto proto = build_model_proto(model, info);
  std::string bytes;
  SN_CHECK(proto.SerializeToString(&bytes), "{}: protobuf could not serialise the model", path);
  write_file_atomic(path, [&](std::FILE* f) { std::fwrite(bytes.data(), 1, bytes.size(), f); });
  return {.nodes = proto.graph().node_size(),
          .initializers = proto.graph().initializer_size(),
          .bytes = static_cast<int64_t>(bytes.size())};
}

}  // namespace scratchnet
