// Tests for io/model_file.h: a model and its metadata saved to one safetensors file and
// rebuilt from it, and every way a model file can be wrong.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "scratchnet/io/model_file.h"
#include "scratchnet/io/safetensors.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/rng.h"
#include "scratchnet/train/recipe.h"
#include "support/error.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::error_of;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::TempDir;

// Every layer kind that has parameters or buffers, plus Dropout (options but no tensors) and
// a Linear without bias (whose state_dict has no "bias").
//   (2, 6, 5) -> Conv2d (3, 6, 5) -> MaxPool2d (3, 3, 2) -> Flatten (18) -> Linear (4) -> (3)
const char* kSpec = R"({"input": [2, 6, 5], "layers": [
  {"type": "Conv2d", "out_channels": 3, "kernel": 3, "padding": 1},
  {"type": "BatchNorm2d", "momentum": 0.2},
  {"type": "ReLU"},
  {"type": "MaxPool2d", "kernel": 2},
  {"type": "Flatten"},
  {"type": "Dropout", "p": 0.25, "seed": 7},
  {"type": "Linear", "out_features": 4},
  {"type": "BatchNorm1d", "eps": 0.001},
  {"type": "Linear", "out_features": 3, "bias": false}
]})";

// The state_dict of the same torch.nn.Sequential, name -> shape.
const std::map<std::string, Shape> kStateDict = {
    {"0.weight", {3, 2, 3, 3}},
    {"0.bias", {3}},
    {"1.weight", {3}},
    {"1.bias", {3}},
    {"1.running_mean", {3}},
    {"1.running_var", {3}},
    {"1.num_batches_tracked", {}},
    {"6.weight", {4, 18}},
    {"6.bias", {4}},
    {"7.weight", {4}},
    {"7.bias", {4}},
    {"7.running_mean", {4}},
    {"7.running_var", {4}},
    {"7.num_batches_tracked", {}},
    {"8.weight", {3, 4}},
};

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// The model of kSpec with every parameter and buffer set to values no initialisation gives:
// random in [-2, 2), variances in [0.5, 1.5), num_batches_tracked 17 and 42.
Sequential sample_model() {
  Sequential model = model_from_spec(kSpec, "sample");
  Rng rng(2024);
  for (auto& p : model.params())
    for (float& v : p.param->value) v = rng.uniform(-2.0f, 2.0f);
  for (auto& b : model.buffers()) {
    if (b.name.ends_with("num_batches_tracked")) {
      b.tensor->fill(b.name[0] == '1' ? 17.0f : 42.0f);
    } else {
      for (float& v : *b.tensor)
        v = b.name.ends_with("var") ? rng.uniform(0.5f, 1.5f) : rng.uniform(-1.0f, 1.0f);
    }
  }
  return model;
}

ModelInfo sample_info() {
  Recipe recipe;
  recipe.optimizer = "sgd";
  recipe.lr = 0.01f;
  recipe.momentum = 0.9f;
  recipe.epochs = 10;
  recipe.preprocess = {.normalize = true, .mean = 0.1307f, .std = 0.3081f};
  return {.preprocess = recipe.preprocess,
          .class_names = {"cat", "dog", "\u00e9l\u00e9phant"},
          .recipe = recipe_to_json(recipe),
          .metrics = R"({"test_accuracy":0.9905,"test_loss":0.031})",
          .origin = "runs/basic/model.safetensors",
          .dataset = "fashion-mnist"};
}

// name -> tensor of every parameter and buffer of `model`.
std::map<std::string, Tensor> tensors_of(Sequential& model) {
  std::map<std::string, Tensor> all;
  for (auto& p : model.params()) all[p.name] = p.param->value;
  for (auto& b : model.buffers()) all[b.name] = *b.tensor;
  return all;
}

void expect_identical(const std::map<std::string, Tensor>& got,
                      const std::map<std::string, Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    SCOPED_TRACE(name);
    auto it = got.find(name);
    ASSERT_NE(it, got.end());
    ASSERT_EQ(it->second.shape(), w.shape());
    for (int64_t i = 0; i < w.numel(); ++i)
      EXPECT_EQ(bits(it->second[i]), bits(w[i])) << "at " << i;
  }
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A model file whose tensors or metadata a test edits before writing it.
class ModelFileTest : public ::testing::Test {
 protected:
  ModelFileTest() : model_(sample_model()), file_(model_to_safetensors(model_, sample_info())) {}

  // Writes file_ as <dir>/m.safetensors and returns the load_model error ("(no error)").
  std::string load_error() {
    write_safetensors(path_, file_);
    return error_of([&] { load_model(path_); });
  }
  // Edits the spec in file_'s metadata.
  void edit_spec(const std::function<void(json&)>& edit) {
    json spec = json::parse(file_.metadata.at("spec"));
    edit(spec);
    file_.metadata["spec"] = spec.dump();
  }

  TempDir dir_;
  const std::string path_ = dir_ / "m.safetensors";
  Sequential model_;
  SafeTensors file_;
};

// ---- round trip ----

TEST_F(ModelFileTest, RoundTripKeepsEveryTensorAndAllMetadata) {
  const ModelInfo info = sample_info();
  save_model(path_, model_, info);
  LoadedModel loaded = load_model(path_);

  expect_identical(tensors_of(loaded.model), tensors_of(model_));
  EXPECT_EQ(model_to_spec(loaded.model), model_to_spec(model_));
  ASSERT_EQ(loaded.model.size(), model_.size());
  for (size_t i = 0; i < model_.size(); ++i)
    EXPECT_EQ(loaded.model.layer(i).describe(), model_.layer(i).describe());
  EXPECT_EQ(loaded.model.input_shape(), (Shape{2, 6, 5}));

  EXPECT_EQ(loaded.info.preprocess.normalize, true);
  EXPECT_EQ(bits(loaded.info.preprocess.mean), bits(0.1307f));
  EXPECT_EQ(bits(loaded.info.preprocess.std), bits(0.3081f));
  EXPECT_EQ(loaded.info.class_names, info.class_names);
  EXPECT_EQ(loaded.info.recipe, info.recipe);
  EXPECT_EQ(loaded.info.metrics, info.metrics);
  EXPECT_EQ(loaded.info.origin, info.origin);
  EXPECT_EQ(loaded.info.dataset, info.dataset);
  Recipe recipe = recipe_from_json(loaded.info.recipe, "recipe");
  EXPECT_EQ(recipe.optimizer, "sgd");
  EXPECT_EQ(recipe.momentum, 0.9f);
  EXPECT_EQ(recipe.epochs, 10);
}

TEST_F(ModelFileTest, LoadedModelComputesTheSameOutputs) {
  save_model(path_, model_, sample_info());
  LoadedModel loaded = load_model(path_);
  Tensor x({2, 2, 6, 5});
  Rng rng(5);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  const Tensor want = model_.forward(x, Mode::kEval);
  const Tensor& got = loaded.model.forward(x, Mode::kEval);
  ASSERT_EQ(got.shape(), (Shape{2, 3}));
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_EQ(bits(got[i]), bits(want[i])) << "at " << i;
}

TEST_F(ModelFileTest, OptionalMetadataMayBeAbsent) {
  save_model(path_, model_, {.preprocess = {}, .class_names = {}});
  const SafeTensors raw = read_safetensors(path_);
  EXPECT_EQ(raw.metadata.count("recipe"), 0u);
  EXPECT_EQ(raw.metadata.count("metrics"), 0u);
  EXPECT_EQ(raw.metadata.count("origin"), 0u);
  EXPECT_EQ(raw.metadata.count("dataset"), 0u);
  LoadedModel loaded = load_model(path_);
  EXPECT_EQ(loaded.info.recipe, "");
  EXPECT_EQ(loaded.info.metrics, "");
  EXPECT_EQ(loaded.info.origin, "");
  EXPECT_EQ(loaded.info.dataset, "");
  EXPECT_TRUE(loaded.info.class_names.empty());
  EXPECT_FALSE(loaded.info.preprocess.normalize);
  expect_identical(tensors_of(loaded.model), tensors_of(model_));
}

// The bytes on disk are plain safetensors, read here without scratchnet's reader: the tensor
// names and shapes are exactly torch.nn.Sequential's state_dict, the data is the model's.
TEST_F(ModelFileTest, FileIsSafetensorsWithStateDictNames) {
  save_model(path_, model_, sample_info());
  const std::string bytes = read_bytes(path_);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i)
    header_size |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  ASSERT_LE(8 + header_size, bytes.size());
  const json header = json::parse(bytes.substr(8, header_size));
  const std::string data = bytes.substr(8 + header_size);

  std::map<std::string, Tensor> want = tensors_of(model_);
  std::set<std::string> names;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    SCOPED_TRACE(name);
    names.insert(name);
    ASSERT_TRUE(kStateDict.count(name));
    EXPECT_EQ(entry.at("dtype"), "F32");
    EXPECT_EQ(entry.at("shape").get<Shape>(), kStateDict.at(name));
    const uint64_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    ASSERT_LE(end, data.size());
    const Tensor& w = want.at(name);
    ASSERT_EQ(end - begin, static_cast<uint64_t>(w.numel()) * 4);
    EXPECT_EQ(std::memcmp(data.data() + begin, w.data(), end - begin), 0);
  }
  std::set<std::string> expected;
  for (const auto& [name, shape] : kStateDict) expected.insert(name);
  EXPECT_EQ(names, expected);

  const json& meta = header.at("__metadata__");
  EXPECT_EQ(meta.at("format"), "scratchnet-model/1");
  EXPECT_EQ(meta.at("spec"), model_to_spec(model_));
  EXPECT_EQ(json::parse(meta.at("class_names").get<std::string>()),
            json::parse(R"(["cat", "dog", "\u00e9l\u00e9phant"])"));
  EXPECT_EQ(json::parse(meta.at("preprocess").get<std::string>()).at("mean"), 0.1307);
  EXPECT_EQ(meta.at("metrics"), R"({"test_accuracy":0.9905,"test_loss":0.031})");
  EXPECT_EQ(meta.at("origin"), "runs/basic/model.safetensors");
  EXPECT_EQ(meta.at("dataset"), "fashion-mnist");
  EXPECT_EQ(meta.at("recipe"), sample_info().recipe);
}

TEST_F(ModelFileTest, CheckpointOptimizerTensorsAreIgnored) {
  file_.tensors["optimizer.0.weight.momentum_buffer"] = Tensor({3, 2, 3, 3});
  file_.tensors["optimizer.0.weight.step"] = Tensor({1}, {12.0f});
  file_.tensors["optimizer.steps"] = Tensor({}, {12.0f});
  ASSERT_EQ(load_error(), "(no error)");
  LoadedModel loaded = load_model(path_);
  expect_identical(tensors_of(loaded.model), tensors_of(model_));
}

// ---- files that are not there or cannot be written ----

TEST_F(ModelFileTest, FileThatDoesNotExist) {
  const std::string missing = dir_ / "nope.safetensors";
  EXPECT_EQ(error_of([&] { load_model(missing); }),
            missing + ": cannot open: No such file or directory");
}

TEST_F(ModelFileTest, SaveIntoMissingDirectoryFailsAndLeavesNoFile) {
  const std::string path = dir_ / "no/such/dir/m.safetensors";
  std::string error = error_of([&] { save_model(path, model_, sample_info()); });
  EXPECT_THAT(error, StartsWith(path + ": cannot "));
  EXPECT_THAT(error, HasSubstr("No such file or directory"));
  EXPECT_THAT(error, Not(HasSubstr("\n")));
  EXPECT_FALSE(fs::exists(dir_ / "no"));
  EXPECT_TRUE(fs::is_empty(dir_.path()));
}

TEST_F(ModelFileTest, FailedSaveLeavesThePreviousFile) {
  save_model(path_, model_, sample_info());
  const std::string before = read_bytes(path_);
  ModelInfo bad = sample_info();
  bad.origin = "\xff\xfe";  // not UTF-8: the header cannot be written
  EXPECT_EQ(error_of([&] { save_model(path_, model_, bad); }),
            path_ + ": tensor names and metadata must be valid UTF-8");
  EXPECT_EQ(read_bytes(path_), before);
  EXPECT_FALSE(fs::exists(path_ + ".tmp"));
}

// ---- truncated files: one line naming the file and what is wrong ----

class TruncatedModelFile : public ModelFileTest {
 protected:
  void SetUp() override {
    save_model(path_, model_, sample_info());
    bytes_ = read_bytes(path_);
    for (int i = 0; i < 8; ++i)
      header_size_ |= uint64_t{static_cast<unsigned char>(bytes_[i])} << (8 * i);
    ASSERT_LT(8 + header_size_, bytes_.size());
  }
  // load_model's error for the file cut to its first `size` bytes; checks it is one line
  // that starts with the path.
  std::string error_when_cut_to(uint64_t size) {
    SCOPED_TRACE("cut to " + std::to_string(size) + " bytes");
    write_bytes(path_, bytes_.substr(0, size));
    std::string error = error_of([&] { load_model(path_); });
    EXPECT_THAT(error, StartsWith(path_ + ": "));
    EXPECT_THAT(error, Not(HasSubstr("\n")));
    return error;
  }

  std::string bytes_;
  uint64_t header_size_ = 0;
};

TEST_F(TruncatedModelFile, InsideTheLength) {
  for (uint64_t size : {0, 1, 4, 7}) {
    EXPECT_EQ(error_when_cut_to(size),
              fmt::format("{}: file is too short for a safetensors header ({} bytes, need at "
                          "least 8)",
                          path_, size));
  }
}

TEST_F(TruncatedModelFile, InsideTheHeader) {
  for (uint64_t size : {uint64_t{8}, 9 + header_size_ / 2, 8 + header_size_ - 1}) {
    EXPECT_EQ(error_when_cut_to(size),
              fmt::format("{}: header length {} exceeds the {} bytes that follow it", path_,
                          header_size_, size - 8));
  }
}

TEST_F(TruncatedModelFile, InsideTheData) {
  const uint64_t data_start = 8 + header_size_;
  const uint64_t data_size = bytes_.size() - data_start;
  for (uint64_t size :
       {data_start, data_start + 1, data_start + data_size / 2, uint64_t{bytes_.size()} - 1}) {
    EXPECT_THAT(
        error_when_cut_to(size),
        HasSubstr(fmt::format("are out of range for the {}-byte data region", size - data_start)));
  }
}

// ---- a spec of another architecture than the tensors ----

TEST_F(ModelFileTest, SpecWithAnExtraLayerNeedsAMissingTensor) {
  edit_spec([](json& spec) {
    spec["layers"].push_back({{"type", "Linear"}, {"out_features", 2}});
  });
  EXPECT_EQ(load_error(), path_ + ": tensor '9.weight' is missing; the architecture needs (2, 3)");
}

TEST_F(ModelFileTest, DroppedTensorIsMissing) {
  file_.tensors.erase("7.running_var");
  EXPECT_EQ(load_error(),
            path_ + ": tensor '7.running_var' is missing; the architecture needs (4)");
}

TEST_F(ModelFileTest, DroppedScalarBufferIsMissing) {
  file_.tensors.erase("1.num_batches_tracked");
  EXPECT_EQ(load_error(),
            path_ + ": tensor '1.num_batches_tracked' is missing; the architecture needs ()");
}

TEST_F(ModelFileTest, TensorOfTheWrongShape) {
  file_.tensors["6.weight"] = Tensor({4, 17});
  EXPECT_EQ(load_error(),
            path_ + ": tensor '6.weight' has shape (4, 17) but the architecture needs (4, 18)");
}

TEST_F(ModelFileTest, SpecWithOtherOptionsNeedsOtherShapes) {
  edit_spec([](json& spec) {  // the same output shape from a 5x5 kernel
    spec["layers"][0]["kernel"] = 5;
    spec["layers"][0]["padding"] = 2;
  });
  EXPECT_EQ(load_error(), path_ +
                              ": tensor '0.weight' has shape (3, 2, 3, 3) but the architecture "
                              "needs (3, 2, 5, 5)");
}

TEST_F(ModelFileTest, ScalarBufferStoredAsOneElementVector) {
  file_.tensors["7.num_batches_tracked"] = Tensor({1}, {42.0f});
  EXPECT_EQ(load_error(), path_ +
                              ": tensor '7.num_batches_tracked' has shape (1) but the "
                              "architecture needs ()");
}

TEST_F(ModelFileTest, SpecWithALayerLessLeavesATensorOver) {
  edit_spec([](json& spec) { spec["layers"].erase(8); });
  EXPECT_EQ(load_error(), path_ + ": tensor '8.weight' does not belong to the architecture");
}

TEST_F(ModelFileTest, StrayTensorDoesNotBelong) {
  file_.tensors["8.bias"] = Tensor({3});
  EXPECT_EQ(load_error(), path_ + ": tensor '8.bias' does not belong to the architecture");
}

// ---- metadata ----

TEST_F(ModelFileTest, MissingFormat) {
  file_.metadata.erase("format");
  EXPECT_EQ(load_error(), path_ + ": not a scratchnet model: metadata has no 'format'");
}

TEST_F(ModelFileTest, SafetensorsWithoutMetadataIsNotAModel) {
  file_.metadata.clear();
  EXPECT_EQ(load_error(), path_ + ": not a scratchnet model: metadata has no 'format'");
}

TEST_F(ModelFileTest, UnsupportedFormat) {
  file_.metadata["format"] = "scratchnet-model/2";
  EXPECT_EQ(load_error(), path_ +
                              ": model format 'scratchnet-model/2' is not supported (expected "
                              "'scratchnet-model/1')");
}

TEST_F(ModelFileTest, MissingSpec) {
  file_.metadata.erase("spec");
  EXPECT_EQ(load_error(), path_ + ": not a scratchnet model: metadata has no 'spec'");
}

TEST_F(ModelFileTest, SpecThatIsNotJson) {
  file_.metadata["spec"] = R"({"input": [2, 6, 5], "layers": [)";
  std::string error = load_error();
  EXPECT_THAT(error, StartsWith(path_ + " (architecture): not valid JSON: "));
  EXPECT_THAT(error, Not(HasSubstr("\n")));
}

TEST_F(ModelFileTest, SpecThatCannotBeBuilt) {
  edit_spec([](json& spec) { spec["layers"][6]["in_features"] = 20; });
  EXPECT_THAT(load_error(),
              StartsWith(path_ + " (architecture): layer 6 Linear: expects 20 input features"));
}

TEST_F(ModelFileTest, PreprocessThatIsNotJson) {
  file_.metadata["preprocess"] = "scale=1/255";
  EXPECT_THAT(load_error(), StartsWith(path_ + " (preprocess): preprocessing is not valid JSON"));
}

TEST_F(ModelFileTest, ClassNamesOfTheWrongCount) {
  file_.metadata["class_names"] = R"(["0", "1", "2", "3"])";
  EXPECT_EQ(load_error(), path_ + ": 4 class names for a model with 3 outputs");
}

TEST_F(ModelFileTest, ClassNamesThatAreNotStrings) {
  file_.metadata["class_names"] = "[0, 1, 2]";
  EXPECT_EQ(load_error(), path_ + ": class_names must be a JSON array of strings");
}

TEST_F(ModelFileTest, ClassNamesThatAreNotJson) {
  file_.metadata["class_names"] = "0, 1, 2";
  EXPECT_EQ(load_error(), path_ + ": class_names must be a JSON array of strings");
}

}  // namespace
}  // namespace scratchnet
