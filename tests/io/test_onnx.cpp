// Tests for io/onnx.h: the written file is read back with the same protobuf classes (from
// libonnx-dev) and checked node by node against the model, then by ONNX's own checker and
// strict shape inference. Running the file in another runtime is tools/onnx_check.py's job
// (tests/e2e/onnx_export.sh).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scratchnet/io/onnx.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/presets.h"
#include "scratchnet/rng.h"
#include "scratchnet/train/recipe.h"
#include "support/error.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::error_of;
using ::testing::HasSubstr;
using testing::TempDir;

// Every layer kind, with the options that change the exported node: padding and stride,
// no bias, a padded and an unpadded AvgPool, eps, negative_slope.
//   (1, 12, 12) -> Conv2d s2 p1 (4, 6, 6) -> MaxPool2d k3 s1 p1 (4, 6, 6)
//   -> AvgPool2d k3 s2 p1 (4, 3, 3) -> Conv2d k1 no bias (5, 3, 3) -> AvgPool2d k2 s1 (5, 2, 2)
//   -> Flatten (20) -> Linear (8) -> BatchNorm1d -> Sigmoid -> Dropout -> Linear no bias (6)
//   -> LogSoftmax (6)
const char* kSpec = R"({"input": [1, 12, 12], "layers": [
  {"type": "Conv2d", "out_channels": 4, "kernel": 3, "stride": 2, "padding": 1},
  {"type": "BatchNorm2d", "eps": 0.001},
  {"type": "LeakyReLU", "negative_slope": 0.2},
  {"type": "MaxPool2d", "kernel": 3, "stride": 1, "padding": 1},
  {"type": "AvgPool2d", "kernel": 3, "stride": 2, "padding": 1},
  {"type": "Tanh"},
  {"type": "Conv2d", "out_channels": 5, "kernel": 1, "bias": false},
  {"type": "ReLU"},
  {"type": "AvgPool2d", "kernel": 2, "stride": 1},
  {"type": "Flatten"},
  {"type": "Linear", "out_features": 8},
  {"type": "BatchNorm1d"},
  {"type": "Sigmoid"},
  {"type": "Dropout", "p": 0.3},
  {"type": "Linear", "out_features": 6, "bias": false},
  {"type": "LogSoftmax"}
]})";

// The ONNX node each layer of kSpec becomes, in order (the padded AvgPool adds a Pad, the
// Dropout none).
const std::vector<std::string> kOps = {"Conv",
                                       "BatchNormalization",
                                       "LeakyRelu",
                                       "MaxPool",
                                       "Pad",
                                       "AveragePool",
                                       "Tanh",
                                       "Conv",
                                       "Relu",
                                       "AveragePool",
                                       "Flatten",
                                       "Gemm",
                                       "BatchNormalization",
                                       "Sigmoid",
                                       "Gemm",
                                       "LogSoftmax"};

// The model of kSpec with every parameter and running statistic random (variances positive).
Sequential sample_model() {
  Sequential model = model_from_spec(kSpec);
  Rng rng(5);
  for (auto& p : model.params())
    for (float& v : p.param->value) v = rng.uniform(-1.0f, 1.0f);
  for (auto& b : model.buffers())
    for (float& v : *b.tensor) v = rng.uniform(0.5f, 1.5f);
  return model;
}

ModelInfo sample_info() {
  ModelInfo info;
  info.preprocess = {.normalize = true, .mean = 0.25f, .std = 0.5f};
  info.class_names = {"a", "b", "c", "d", "e", "f"};
  info.dataset = "toy";
  info.metrics = R"({"test_accuracy":0.5})";
  return info;
}

onnx::ModelProto read_proto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto proto;
  EXPECT_TRUE(proto.ParseFromIstream(&in)) << path;
  return proto;
}

const onnx::AttributeProto& attr(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return a;
  ADD_FAILURE() << node.name() << " has no attribute " << name;
  static const onnx::AttributeProto kNone;
  return kNone;
}

std::vector<int64_t> ints(const onnx::AttributeProto& a) {
  return {a.ints().begin(), a.ints().end()};
}

// "batch" then the fixed sizes, as written for a value_info.
std::vector<std::string> dims(const onnx::ValueInfoProto& v) {
  std::vector<std::string> out;
  for (const auto& d : v.type().tensor_type().shape().dim())
    out.push_back(d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return out;
}

std::map<std::string, std::string> metadata(const onnx::ModelProto& proto) {
  std::map<std::string, std::string> out;
  for (const auto& e : proto.metadata_props()) out[e.key()] = e.value();
  return out;
}

class OnnxExport : public ::testing::Test {
 protected:
  void SetUp() override {
    summary_ = export_onnx(dir_ / "m.onnx", model_, info_);
    proto_ = read_proto(dir_ / "m.onnx");
  }
  TempDir dir_;
  Sequential model_ = sample_model();
  ModelInfo info_ = sample_info();
  OnnxExportSummary summary_;
  onnx::ModelProto proto_;
};

TEST_F(OnnxExport, HeaderOpsetAndSummary) {
  EXPECT_EQ(proto_.ir_version(), kOnnxIrVersion);
  ASSERT_EQ(proto_.opset_import_size(), 1);
  EXPECT_EQ(proto_.opset_import(0).domain(), "");
  EXPECT_EQ(proto_.opset_import(0).version(), 13);
  EXPECT_EQ(proto_.producer_name(), "scratchnet");
  EXPECT_EQ(summary_.nodes, static_cast<int64_t>(kOps.size()));
  EXPECT_EQ(summary_.bytes, static_cast<int64_t>(fs::file_size(dir_ / "m.onnx")));
  EXPECT_EQ(summary_.initializers, proto_.graph().initializer_size());
}

TEST_F(OnnxExport, InputAndOutputHaveADynamicBatch) {
  const auto& g = proto_.graph();
  ASSERT_EQ(g.input_size(), 1);
  EXPECT_EQ(g.input(0).name(), "input");
  EXPECT_EQ(g.input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  EXPECT_THAT(dims(g.input(0)), ElementsAre("batch", "1", "12", "12"));
  ASSERT_EQ(g.output_size(), 1);
  EXPECT_EQ(g.output(0).name(), "logits");
  EXPECT_THAT(dims(g.output(0)), ElementsAre("batch", "6"));
}

TEST_F(OnnxExport, NodesFollowTheLayersAndChain) {
  const auto& g = proto_.graph();
  std::vector<std::string> ops;
  for (const auto& n : g.node()) ops.push_back(n.op_type());
  EXPECT_THAT(ops, ElementsAreArray(kOps));
  // Each node reads the tensor the one before wrote; the first reads the input, the last
  // writes the output.
  std::string current = "input";
  for (const auto& n : g.node()) {
    ASSERT_GE(n.input_size(), 1) << n.name();
    EXPECT_EQ(n.input(0), current) << n.name();
    ASSERT_EQ(n.output_size(), 1) << n.name();
    current = n.output(0);
  }
  EXPECT_EQ(current, "logits");
  // Intermediate shapes: after layer 4 (AvgPool2d k3 s2 p1) and the Pad in front of it.
  std::map<std::string, std::vector<std::string>> shapes;
  for (const auto& v : g.value_info()) shapes[v.name()] = dims(v);
  EXPECT_THAT(shapes["4.padded"], ElementsAre("batch", "4", "8", "8"));
  EXPECT_THAT(shapes["4.out"], ElementsAre("batch", "4", "3", "3"));
  EXPECT_THAT(shapes["10.out"], ElementsAre("batch", "8"));
}

TEST_F(OnnxExport, AttributesCarryTheLayerOptions) {
  const auto& g = proto_.graph();
  const auto& conv = g.node(0);
  EXPECT_THAT(ints(attr(conv, "kernel_shape")), ElementsAre(3, 3));
  EXPECT_THAT(ints(attr(conv, "strides")), ElementsAre(2, 2));
  EXPECT_THAT(ints(attr(conv, "pads")), ElementsAre(1, 1, 1, 1));
  EXPECT_THAT(conv.input(), ElementsAre("input", "0.weight", "0.bias"));
  EXPECT_FLOAT_EQ(attr(g.node(1), "epsilon").f(), 0.001f);
  EXPECT_FLOAT_EQ(attr(g.node(2), "alpha").f(), 0.2f);
  EXPECT_THAT(ints(attr(g.node(3), "pads")), ElementsAre(1, 1, 1, 1));
  EXPECT_THAT(ints(attr(g.node(3), "strides")), ElementsAre(1, 1));
  // The padded AvgPool: zeros added by Pad, then a pool without pads dividing by K*K.
  EXPECT_THAT(g.node(4).input(), ElementsAre("3.out", "4.pads"));
  EXPECT_THAT(ints(attr(g.node(5), "pads")), ElementsAre(0, 0, 0, 0));
  EXPECT_THAT(ints(attr(g.node(5), "strides")), ElementsAre(2, 2));
  EXPECT_EQ(attr(g.node(5), "count_include_pad").i(), 1);
  EXPECT_THAT(ints(attr(g.node(9), "kernel_shape")), ElementsAre(2, 2));
  EXPECT_THAT(ints(attr(g.node(9), "strides")), ElementsAre(1, 1));
  EXPECT_THAT(g.node(7).input(), ElementsAre("5.out", "6.weight"));  // no bias
  EXPECT_EQ(attr(g.node(10), "axis").i(), 1);
  EXPECT_EQ(attr(g.node(11), "transB").i(), 1);
  EXPECT_THAT(g.node(11).input(), ElementsAre("9.out", "10.weight", "10.bias"));
  EXPECT_FLOAT_EQ(attr(g.node(12), "epsilon").f(), 1e-5f);
  // Dropout (layer 13) is skipped: the last Gemm reads the Sigmoid's output.
  EXPECT_THAT(g.node(14).input(), ElementsAre("12.out", "14.weight"));
  EXPECT_EQ(attr(g.node(15), "axis").i(), 1);
}

TEST_F(OnnxExport, InitialisersHoldTheModelTensors) {
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : proto_.graph().initializer()) inits[t.name()] = &t;
  std::map<std::string, const Tensor*> expected;
  for (auto& p : model_.params()) expected[p.name] = &p.param->value;
  for (auto& b : model_.buffers())
    if (b.name.find("num_batches_tracked") == std::string::npos) expected[b.name] = b.tensor;
  ASSERT_EQ(inits.size(), expected.size() + 1);  // + the Pad's pads
  for (const auto& [name, tensor] : expected) {
    ASSERT_TRUE(inits.count(name)) << name;
    const onnx::TensorProto& t = *inits[name];
    EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT) << name;
    EXPECT_THAT(std::vector<int64_t>(t.dims().begin(), t.dims().end()),
                ElementsAreArray(tensor->shape()))
        << name;
    ASSERT_EQ(t.raw_data().size(), tensor->numel() * sizeof(float)) << name;
    std::vector<float> values(tensor->numel());
    std::memcpy(values.data(), t.raw_data().data(), t.raw_data().size());
    EXPECT_EQ(values, tensor->to_vector()) << name;
  }
  const onnx::TensorProto& pads = *inits.at("4.pads");
  EXPECT_EQ(pads.data_type(), onnx::TensorProto::INT64);
  EXPECT_THAT(pads.int64_data(), ElementsAre(0, 0, 1, 1, 0, 0, 1, 1));
}

TEST_F(OnnxExport, MetadataRecordsPreprocessingAndClasses) {
  auto meta = metadata(proto_);
  EXPECT_EQ(json::parse(meta.at("preprocess")), json::parse(preprocess_to_json(info_.preprocess)));
  EXPECT_EQ(json::parse(meta.at("preprocess"))["mean"].get<float>(), 0.25f);
  EXPECT_EQ(meta.at("class_names"), R"(["a","b","c","d","e","f"])");
  EXPECT_EQ(meta.at("spec"), model_to_spec(model_));
  EXPECT_EQ(meta.at("dataset"), "toy");
  EXPECT_EQ(meta.at("metrics"), info_.metrics);
  EXPECT_EQ(meta.count("recipe"), 0u);  // empty fields are left out
  EXPECT_EQ(meta.count("origin"), 0u);
}

TEST_F(OnnxExport, PassesTheOnnxCheckerAndStrictShapeInference) {
  EXPECT_NO_THROW(onnx::checker::check_model(proto_));
  // Inference merges its shapes into the written value_infos and throws on any conflict.
  onnx::ModelProto inferred = proto_;
  EXPECT_NO_THROW(onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                                     onnx::ShapeInferenceOptions(true, 1, false)));
}

// The check above can fail: a value_info whose shape disagrees with the node is caught.
TEST_F(OnnxExport, ShapeInferenceCatchesAWrongShape) {
  onnx::ModelProto wrong = proto_;
  for (auto& v : *wrong.mutable_graph()->mutable_value_info())
    if (v.name() == "4.out")
      v.mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_value(4);
  EXPECT_ANY_THROW(onnx::shape_inference::InferShapes(wrong, onnx::OpSchemaRegistry::Instance(),
                                                      onnx::ShapeInferenceOptions(true, 1, false)));
}

TEST(OnnxExportModels, PresetsExportAndCheck) {
  TempDir dir;
  for (const std::string name : {"basic", "bn"}) {
    Sequential model = make_preset(name);
    model.init(Init::kPyTorch, 1);
    export_onnx(dir / (name + ".onnx"), model, ModelInfo{});
    onnx::ModelProto proto = read_proto(dir / (name + ".onnx"));
    EXPECT_NO_THROW(onnx::checker::check_model(proto)) << name;
    EXPECT_THAT(dims(proto.graph().output(0)), ElementsAre("batch", "10")) << name;
  }
}

TEST(OnnxExportModels, DropoutOnlyModelPassesTheInputThrough) {
  TempDir dir;
  Sequential model = model_from_spec(R"({"input": [3], "layers": [{"type": "Dropout"}]})");
  export_onnx(dir / "d.onnx", model, ModelInfo{});
  onnx::ModelProto proto = read_proto(dir / "d.onnx");
  ASSERT_EQ(proto.graph().node_size(), 1);
  EXPECT_EQ(proto.graph().node(0).op_type(), "Identity");
  EXPECT_THAT(proto.graph().node(0).input(), ElementsAre("input"));
  EXPECT_THAT(dims(proto.graph().output(0)), ElementsAre("batch", "3"));
  EXPECT_NO_THROW(onnx::checker::check_model(proto));
}

TEST(OnnxExportModels, UnbuiltOrEmptyModelIsAnError) {
  Sequential empty;
  EXPECT_THAT(error_of([&] { onnx_model_bytes(empty, ModelInfo{}); }),
              HasSubstr("ONNX export: the model has no layers"));
  Sequential unbuilt;
  unbuilt.add(ReLU());
  EXPECT_THAT(error_of([&] { onnx_model_bytes(unbuilt, ModelInfo{}); }),
              HasSubstr("ONNX export: the model is not built"));
}

TEST(OnnxExportModels, BytesMatchTheFile) {
  TempDir dir;
  Sequential model = sample_model();
  export_onnx(dir / "m.onnx", model, sample_info());
  std::ifstream in(dir / "m.onnx", std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(onnx_model_bytes(model, sample_info()), file);
}

TEST(OnnxExportModels, MissingDirectoryNamesThePathAndLeavesNothing) {
  TempDir dir;
  Sequential model = sample_model();
  const std::string path = dir / "no/such/dir/m.onnx";
  EXPECT_THAT(error_of([&] { export_onnx(path, model, ModelInfo{}); }),
              HasSubstr(path + ": cannot write"));
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(OnnxExportModels, ReplacesAnOldFileWhole) {
  TempDir dir;
  std::ofstream(dir / "m.onnx") << "old contents, much shorter than a model";
  Sequential model = sample_model();
  export_onnx(dir / "m.onnx", model, ModelInfo{});
  EXPECT_EQ(read_proto(dir / "m.onnx").graph().node_size(), static_cast<int>(kOps.size()));
  EXPECT_FALSE(fs::exists(dir / "m.onnx.tmp"));
}

}  // namespace
}  // namespace scratchnet
