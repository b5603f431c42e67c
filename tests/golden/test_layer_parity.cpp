// Parity of every layer and loss with PyTorch, from the golden files under golden/layers/
// (written by tools/golden_layers.py; golden/README-layers.md says how).
//
// Each file is one case and one test, Golden/LayerParity.MatchesPyTorch/<file stem>. Its
// metadata names the layer kind (or loss function), the options as JSON with the C++ field
// names, and the mode. The test builds the layer as a one-layer model spec (model_from_spec,
// which rejects unknown options), loads the parameters and buffers (0-d tensors such as
// num_batches_tracked are 0-d in the files too), runs forward and compares the output (and the
// running statistics after a training step), then runs backward with the stored upstream
// gradient and compares the input and parameter gradients. Tolerances (support/golden.h
// defines the measure): kForwardTol for outputs and buffers, kGradTol for gradients. Running
// the binary prints the largest error per kind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "scratchnet/io/safetensors.h"
#include "scratchnet/layer.h"
#include "scratchnet/loss.h"
#include "scratchnet/model.h"
#include "scratchnet/model_spec.h"
#include "support/error.h"
#include "support/golden.h"

namespace scratchnet {
namespace {

using nlohmann::json;
using testing::golden_meta;
using testing::golden_tensor;
using testing::tensors_close;

constexpr double kForwardTol = 1e-5;
constexpr double kGradTol = 1e-4;

const std::string kGoldenDir = std::string(SN_GOLDEN_DIR) + "/layers";

const std::vector<std::string> kLossKinds = {"cross_entropy_loss", "nll_loss", "mse_loss"};

// The one-layer model spec of a golden case: {"input": <input shape without the batch
// dimension>, "layers": [{"type": <kind>, <options>...}]}.
std::string layer_spec(const std::string& kind, const std::string& options_json,
                       const Shape& input_shape) {
  json layer = json::parse(options_json);
  if (!layer.is_object()) throw std::runtime_error(kind + ": options must be a JSON object");
  layer["type"] = kind;
  return json{{"input", Shape(input_shape.begin() + 1, input_shape.end())},
              {"layers", json::array({layer})}}
      .dump();
}

// Reads loss option fields from the case's JSON and rejects keys no field consumed, so a name
// that differs between the generator and the C++ options fails instead of silently defaulting.
// (Layers get the same strictness from model_from_spec.)
class OptionReader {
 public:
  OptionReader(std::string kind, json options)
      : kind_(std::move(kind)), options_(std::move(options)) {}

  template <typename T>
  OptionReader& get(const char* key, T& field) {
    if (options_.contains(key)) field = options_.at(key).get<T>();
    used_.insert(key);
    return *this;
  }

  void check_all_used() const {
    for (const auto& item : options_.items()) {
      if (!used_.count(item.key())) {
        throw std::runtime_error(kind_ + ": unknown option \"" + item.key() + "\" in golden");
      }
    }
  }

 private:
  std::string kind_;
  json options_;
  std::set<std::string> used_;
};

// Largest relative errors seen per kind, printed when the binary finishes.
struct MaxErrors {
  double forward = 0, gradient = 0;
  int cases = 0;
};
std::map<std::string, MaxErrors>& max_errors() {
  static std::map<std::string, MaxErrors> errors;
  return errors;
}

class ErrorReport : public ::testing::Environment {
 public:
  void TearDown() override {
    if (max_errors().empty()) return;
    std::printf(
        "\nLargest relative error vs PyTorch per kind (tolerance %.0e forward, %.0e "
        "gradients):\n",
        kForwardTol, kGradTol);
    std::printf("  %-20s %5s %12s %12s\n", "kind", "cases", "forward", "gradients");
    for (const auto& [kind, e] : max_errors()) {
      std::printf("  %-20s %5d %12.3e %12.3e\n", kind.c_str(), e.cases, e.forward, e.gradient);
    }
  }
};
const auto* const kErrorReport = ::testing::AddGlobalTestEnvironment(new ErrorReport);

// Compares, records the error under `kind` and returns whether it passed.
struct Checker {
  std::string case_name, kind;
  double forward = 0, gradient = 0;

  void expect(const std::string& tensor, const Tensor& got, const Tensor& want, bool is_grad) {
    double err = 0;
    double tol = is_grad ? kGradTol : kForwardTol;
    EXPECT_TRUE(tensors_close(case_name + ": " + tensor, got, want, tol, &err));
    (is_grad ? gradient : forward) = std::max(is_grad ? gradient : forward, err);
  }

  ~Checker() {
    MaxErrors& e = max_errors()[kind];
    e.forward = std::max(e.forward, forward);
    e.gradient = std::max(e.gradient, gradient);
    ++e.cases;
    std::printf("[parity] %-20s %-40s forward %.3e  gradients %.3e\n", kind.c_str(),
                case_name.c_str(), forward, gradient);
  }
};

void check_layer(const SafeTensors& file, const std::string& path, Checker& check) {
  const std::string mode_name = golden_meta(file, "mode", path);
  ASSERT_TRUE(mode_name == "train" || mode_name == "eval") << path << ": mode " << mode_name;
  const Mode mode = mode_name == "train" ? Mode::kTrain : Mode::kEval;
  const Tensor& in = golden_tensor(file, "input", path);
  Sequential model =
      model_from_spec(layer_spec(check.kind, golden_meta(file, "options", path), in.shape()), path);
  ASSERT_EQ(model.size(), 1u);
  Layer& layer = model.layer(0);
  ASSERT_EQ(layer.kind(), check.kind) << check.case_name;

  // Parameters: every non-empty layer parameter has a golden value and gradient, and every
  // golden gradient belongs to a layer parameter.
  std::set<std::string> param_names;
  for (const NamedParameter& p : layer.params()) {
    if (p.param->value.empty()) continue;  // a disabled bias
    param_names.insert(p.name);
    const Tensor& value = golden_tensor(file, p.name, path);
    ASSERT_EQ(value.shape(), p.param->value.shape()) << check.case_name << ": " << p.name;
    std::copy(value.begin(), value.end(), p.param->value.begin());
    p.param->grad.zero();
  }
  for (const auto& [name, tensor] : file.tensors) {
    if (name.starts_with("d_") && name != "d_input" && name != "d_output") {
      EXPECT_TRUE(param_names.count(name.substr(2)))
          << check.case_name << ": golden has " << name << " but the layer has no such parameter";
    }
  }
  for (const NamedBuffer& b : layer.buffers()) {
    const Tensor& value = golden_tensor(file, b.name, path);
    ASSERT_EQ(value.shape(), b.tensor->shape()) << check.case_name << ": buffer " << b.name;
    std::copy(value.begin(), value.end(), b.tensor->begin());
  }

  Tensor out(layer.output_shape(in.shape()));
  layer.forward(out, in, mode);
  check.expect("output", out, golden_tensor(file, "output", path), false);
  if (mode == Mode::kTrain) {
    for (const NamedBuffer& b : layer.buffers()) {
      auto it = file.tensors.find(b.name + ".after");
      ASSERT_NE(it, file.tensors.end()) << check.case_name << ": no " << b.name << ".after";
      check.expect(b.name + " after forward", *b.tensor, it->second, false);
    }
  }

  Tensor d_in(in.shape());
  d_in.fill(1e30f);  // backward must overwrite every element
  layer.backward(d_in, golden_tensor(file, "d_output", path), in, out);
  check.expect("d_input", d_in, golden_tensor(file, "d_input", path), true);
  for (const NamedParameter& p : layer.params()) {
    if (p.param->value.empty()) continue;
    check.expect("d_" + p.name, p.param->grad, golden_tensor(file, "d_" + p.name, path), true);
  }
}

std::vector<int32_t> labels_of(const Tensor& t) {
  std::vector<int32_t> labels(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) labels[i] = static_cast<int32_t>(t[i]);
  return labels;
}

void check_loss(const SafeTensors& file, const std::string& path, Checker& check) {
  const json options = json::parse(golden_meta(file, "options", path));
  OptionReader r(check.kind, options);
  const Tensor& in = golden_tensor(file, "input", path);
  Tensor d_in(in.shape());
  d_in.fill(1e30f);
  float loss = 0;
  if (check.kind == "cross_entropy_loss") {
    CrossEntropyOptions o;
    r.get("label_smoothing", o.label_smoothing).check_all_used();
    const std::vector<int32_t> labels = labels_of(golden_tensor(file, "labels", path));
    loss = cross_entropy_loss(in, labels, &d_in, o);
  } else if (check.kind == "nll_loss") {
    r.check_all_used();
    const std::vector<int32_t> labels = labels_of(golden_tensor(file, "labels", path));
    loss = nll_loss(in, labels, &d_in);
  } else if (check.kind == "mse_loss") {
    r.check_all_used();
    loss = mse_loss(in, golden_tensor(file, "target", path), &d_in);
  } else {
    FAIL() << path << ": no loss kind \"" << check.kind << "\"";
  }
  check.expect("loss", Tensor({1}, {loss}), golden_tensor(file, "output", path), false);
  check.expect("d_input", d_in, golden_tensor(file, "d_input", path), true);
}

std::string stem_of(const std::string& path) { return std::filesystem::path(path).stem(); }

class LayerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(LayerParity, MatchesPyTorch) {
  const std::string& path = GetParam();
  const SafeTensors file = read_safetensors(path);
  Checker check{stem_of(path), golden_meta(file, "kind", path)};
  const bool is_loss =
      std::find(kLossKinds.begin(), kLossKinds.end(), check.kind) != kLossKinds.end();
  if (is_loss) {
    check_loss(file, path, check);
  } else {
    check_layer(file, path, check);
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, LayerParity,
                         ::testing::ValuesIn(testing::list_goldens(kGoldenDir)),
                         [](const auto& test_info) { return stem_of(test_info.param); });

// The golden directory covers every layer kind and loss, so a lost file cannot pass silently.
// The int8 kinds have no float PyTorch counterpart: test_quantize checks them against their
// definition (int8_weights.h) instead.
TEST(LayerParityFiles, CoverEveryKind) {
  std::map<std::string, int> counts;
  for (const std::string& path : testing::list_goldens(kGoldenDir)) {
    counts[golden_meta(read_safetensors(path), "kind", path)] += 1;
  }
  for (const auto& kinds : {layer_kinds(), kLossKinds}) {
    for (const std::string& kind : kinds) {
      if (kind == "Conv2dInt8" || kind == "LinearInt8") continue;
      EXPECT_GE(counts[kind], 2) << "fewer than 2 golden cases for " << kind << " in "
                                 << kGoldenDir;
    }
  }
}

// The spec built from a case's metadata is the layer it names, with its options, and a
// misspelt option is an error rather than a silent default.
TEST(LayerParityFiles, SpecFromMetadataIsStrict) {
  Sequential model = model_from_spec(
      layer_spec("Conv2d", R"({"out_channels": 3, "kernel": 2, "stride": 2})", {4, 2, 7, 5}));
  ASSERT_EQ(model.size(), 1u);
  EXPECT_EQ(model.input_shape(), (Shape{2, 7, 5}));
  EXPECT_EQ(model.layer(0).describe(), "Conv2d(2, 3, kernel=2, stride=2, padding=0)");
  EXPECT_THAT(testing::error_of([] {
                model_from_spec(layer_spec("MaxPool2d", R"({"kernal": 2})", {1, 1, 4, 4}),
                                "case.safetensors");
              }),
              ::testing::HasSubstr("case.safetensors: layer 0 MaxPool2d: unknown option 'kernal'"));
  EXPECT_THAT(
      testing::error_of([] {
        model_from_spec(layer_spec("Linear", R"({"in_features": 5, "out_features": 2})", {3, 4}));
      }),
      ::testing::HasSubstr("layer 0 Linear: expects 5 input features, got 4"));
}

// The comparison flags a single wrong element, names where, and treats NaN as an error.
TEST(LayerParityFiles, ComparisonCatchesOneBadElement) {
  const std::vector<std::string> paths = testing::list_goldens(kGoldenDir);
  ASSERT_FALSE(paths.empty()) << "no golden files in " << kGoldenDir;
  const Tensor want = golden_tensor(read_safetensors(paths[0]), "output", paths[0]);
  Tensor got = want;
  EXPECT_TRUE(tensors_close("same", got, want, 0.0));
  const int64_t i = want.numel() / 2;
  got[i] += 1e-3f;
  auto result = tensors_close("perturbed", got, want, 1e-5);
  ASSERT_FALSE(result);
  EXPECT_NE(std::string(result.message()).find(testing::index_str(want.shape(), i)),
            std::string::npos)
      << result.message();
  got = want;
  got[i] = std::nanf("");
  EXPECT_FALSE(tensors_close("nan", got, want, 1e-5));
  got = want;
  got.reshape({want.numel()});
  EXPECT_FALSE(tensors_close("shape", got, want, 1.0));
}

}  // namespace
}  // namespace scratchnet
