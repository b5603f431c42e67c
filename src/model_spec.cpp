#include "scratchnet/model_spec.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "scratchnet/check.h"
#include "scratchnet/layers/avg_pool2d.h"
#include "scratchnet/layers/batch_norm1d.h"
#include "scratchnet/layers/batch_norm2d.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/conv2d_int8.h"
#include "scratchnet/layers/dropout.h"
#include "scratchnet/layers/flatten.h"
#include "scratchnet/layers/leaky_relu.h"
#include "scratchnet/layers/linear.h"
#include "scratchnet/layers/linear_int8.h"
#include "scratchnet/layers/log_softmax.h"
#include "scratchnet/layers/max_pool2d.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/layers/sigmoid.h"
#include "scratchnet/layers/softmax.h"
#include "scratchnet/layers/tanh.h"

namespace scratchnet {

using json = nlohmann::json;

namespace {

// One layer's JSON object: typed reads with defaults, then finish() rejects unknown keys.
class OptionReader {
 public:
  OptionReader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  int64_t integer(const char* key, int64_t fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    SN_CHECK(v->is_number_integer(), "{}: option '{}' must be an integer, got {}", where_, key,
             v->dump());
    return v->get<int64_t>();
  }
  float number(const char* key, float fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    SN_CHECK(v->is_number(), "{}: option '{}' must be a number, got {}", where_, key, v->dump());
    return v->get<float>();
  }
  bool boolean(const char* key, bool fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    SN_CHECK(v->is_boolean(), "{}: option '{}' must be true or false, got {}", where_, key,
             v->dump());
    return v->get<bool>();
  }
  // The input size: given, or taken from the incoming shape.
  int64_t input_size(const char* key, const Shape& in, int dim) {
    int64_t inferred = static_cast<int>(in.size()) > dim ? in[dim] : 0;
    return integer(key, inferred);
  }
  void finish() const {
    for (const auto& [key, value] : object_.items())
      if (key != "type" && !known_.count(key))
        fail("{}: unknown option '{}' (known: {})", where_, key,
             known_.empty() ? "none" : fmt::format("{}", fmt::join(known_, ", ")));
  }

 private:
  const json* find(const char* key) {
    known_.insert(key);
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  const json& object_;
  std::string where_;
  std::set<std::string> known_;
};

using Maker = std::unique_ptr<Layer> (*)(OptionReader&, const Shape& in);
using Writer = json (*)(const Layer&);

struct LayerKind {
  const char* name;
  Maker make;
  Writer write;
};

// A float option as the shortest decimal that reads back as it (1e-5f -> 1e-05, not
// 9.99999974738e-06), so written specs look like the ones people write.
double decimal(float x) { return std::stod(fmt::format("{}", x)); }

template <typename L>
const auto& opts(const Layer& layer) {
  return static_cast<const L&>(layer).options();
}

json pool_json(int64_t kernel, int64_t stride, int64_t padding) {
  return {{"kernel", kernel}, {"stride", stride == 0 ? kernel : stride}, {"padding", padding}};
}

template <typename BN>
std::unique_ptr<Layer> make_batch_norm(OptionReader& r, const Shape& in) {
  return std::make_unique<BN>(BatchNormOptions{.num_features = r.input_size("num_features", in, 1),
                                               .eps = r.number("eps", 1e-5f),
                                               .momentum = r.number("momentum", 0.1f)});
}
template <typename BN>
json write_batch_norm(const Layer& l) {
  const auto& o = opts<BN>(l);
  return {
      {"num_features", o.num_features}, {"eps", decimal(o.eps)}, {"momentum", decimal(o.momentum)}};
}

template <typename L>
std::unique_ptr<Layer> make_plain(OptionReader&, const Shape&) {
  return std::make_unique<L>();
}
json write_plain(const Layer&) { return json::object(); }

const LayerKind kKinds[] = {
    {"Conv2d",
     [](OptionReader& r, const Shape& in) -> std::unique_ptr<Layer> {
       return std::make_unique<Conv2d>(
           Conv2dOptions{.in_channels = r.input_size("in_channels", in, 1),
                         .out_channels = r.integer("out_channels", 0),
                         .kernel = r.integer("kernel", 0),
                         .stride = r.integer("stride", 1),
                         .padding = r.integer("padding", 0),
                         .bias = r.boolean("bias", true)});
     },
     [](const Layer& l) -> json {
       const auto& o = opts<Conv2d>(l);
       return {{"in_channels", o.in_channels}, {"out_channels", o.out_channels},
               {"kernel", o.kernel},           {"stride", o.stride},
               {"padding", o.padding},         {"bias", o.bias}};
     }},
    {"MaxPool2d",
     [](OptionReader& r, const Shape&) -> std::unique_ptr<Layer> {
       return std::make_unique<MaxPool2d>(MaxPool2dOptions{.kernel = r.integer("kernel", 0),
                                                           .stride = r.integer("stride", 0),
                                                           .padding = r.integer("padding", 0)});
     },
     [](const Layer& l) {
       const auto& o = opts<MaxPool2d>(l);
       return pool_json(o.kernel, o.stride, o.padding);
     }},
    {"AvgPool2d",
     [](OptionReader& r, const Shape&) -> std::unique_ptr<Layer> {
       return std::make_unique<AvgPool2d>(AvgPool2dOptions{.kernel = r.integer("kernel", 0),
                                                           .stride = r.integer("stride", 0),
                                                           .padding = r.integer("padding", 0)});
     },
     [](const Layer& l) {
       const auto& o = opts<AvgPool2d>(l);
       return pool_json(o.kernel, o.stride, o.padding);
     }},
    {"Linear",
     [](OptionReader& r, const Shape& in) -> std::unique_ptr<Layer> {
       return std::make_unique<Linear>(
           LinearOptions{.in_features = r.input_size("in_features", in, 1),
                         .out_features = r.integer("out_features", 0),
                         .bias = r.boolean("bias", true)});
     },
     [](const Layer& l) -> json {
       const auto& o = opts<Linear>(l);
       return {{"in_features", o.in_features}, {"out_features", o.out_features}, {"bias", o.bias}};
     }},
    {"Conv2dInt8",
     [](OptionReader& r, const Shape& in) -> std::unique_ptr<Layer> {
       return std::make_unique<Conv2dInt8>(
           Conv2dOptions{.in_channels = r.input_size("in_channels", in, 1),
                         .out_channels = r.integer("out_channels", 0),
                         .kernel = r.integer("kernel", 0),
                         .stride = r.integer("stride", 1),
                         .padding = r.integer("padding", 0)});
     },
     [](const Layer& l) -> json {
       const auto& o = opts<Conv2dInt8>(l);
       return {{"in_channels", o.in_channels},
               {"out_channels", o.out_channels},
               {"kernel", o.kernel},
               {"stride", o.stride},
               {"padding", o.padding}};
     }},
    {"LinearInt8",
     [](OptionReader& r, const Shape& in) -> std::unique_ptr<Layer> {
       return std::make_unique<LinearInt8>(
           LinearOptions{.in_features = r.input_size("in_features", in, 1),
                         .out_features = r.integer("out_features", 0)});
     },
     [](const Layer& l) -> json {
       const auto& o = opts<LinearInt8>(l);
       return {{"in_features", o.in_features}, {"out_features", o.out_features}};
     }},
    {"BatchNorm2d", make_batch_norm<BatchNorm2d>, write_batch_norm<BatchNorm2d>},
    {"BatchNorm1d", make_batch_norm<BatchNorm1d>, write_batch_norm<BatchNorm1d>},
    {"Dropout",
     [](OptionReader& r, const Shape&) -> std::unique_ptr<Layer> {
       return std::make_unique<Dropout>(DropoutOptions{
           .p = r.number("p", 0.5f), .seed = static_cast<uint64_t>(r.integer("seed", 0))});
     },
     [](const Layer& l) -> json {
       const auto& o = opts<Dropout>(l);
       return {{"p", decimal(o.p)}, {"seed", o.seed}};
     }},
    {"LeakyReLU",
     [](OptionReader& r, const Shape&) -> std::unique_ptr<Layer> {
       return std::make_unique<LeakyReLU>(
           LeakyReLUOptions{.negative_slope = r.number("negative_slope", 0.01f)});
     },
     [](const Layer& l) -> json {
       return {{"negative_slope", decimal(opts<LeakyReLU>(l).negative_slope)}};
     }},
    {"ReLU", make_plain<ReLU>, write_plain},
    {"Tanh", make_plain<Tanh>, write_plain},
    {"Sigmoid", make_plain<Sigmoid>, write_plain},
    {"Flatten", make_plain<Flatten>, write_plain},
    {"Softmax", make_plain<Softmax>, write_plain},
    {"LogSoftmax", make_plain<LogSoftmax>, write_plain},
};

const LayerKind* find_kind(const std::string& name) {
  for (const auto& k : kKinds)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace

std::vector<std::string> layer_kinds() {
  std::vector<std::string> names;
  for (const auto& k : kKinds) names.emplace_back(k.name);
  return names;
}

Sequential model_from_spec(const std::string& json_text, const std::string& source) {
  json spec;
  try {
    spec = json::parse(json_text);
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON: {}", source, e.what());
  }
  SN_CHECK(spec.is_object(), "{}: a model spec must be a JSON object with \"input\" and \"layers\"",
           source);
  for (const auto& [key, value] : spec.items())
    SN_CHECK(key == "input" || key == "layers" || key == "name",
             "{}: unknown key '{}' (known: input, layers, name)", source, key);
  Shape input = {1, 28, 28};
  if (spec.contains("input")) {
    const json& in = spec["input"];
    bool ok = in.is_array() && !in.empty() && in.size() <= 3;
    for (const auto& d : in) ok = ok && d.is_number_integer() && d.get<int64_t>() >= 1;
    SN_CHECK(ok, "{}: \"input\" must be the per-sample shape, e.g. [1, 28, 28], got {}", source,
             in.dump());
    input = in.get<Shape>();
  }
  SN_CHECK(spec.contains("layers") && spec["layers"].is_array() && !spec["layers"].empty(),
           "{}: \"layers\" must be a non-empty array of layers", source);

  Sequential model;
  Shape shape = input;
  shape.insert(shape.begin(), 1);
  size_t index = 0;
  for (const json& entry : spec["layers"]) {
    std::string where = fmt::format("{}: layer {}", source, index);
    SN_CHECK(entry.is_object() && entry.contains("type") && entry["type"].is_string(),
             "{}: expected an object with a \"type\", got {}", where, entry.dump());
    std::string type = entry["type"].get<std::string>();
    const LayerKind* kind = find_kind(type);
    SN_CHECK(kind != nullptr, "{}: unknown layer type '{}' (known: {})", where, type,
             fmt::join(layer_kinds(), ", "));
    where += " " + type;
    OptionReader reader(entry, where);
    std::unique_ptr<Layer> layer;
    try {
      layer = kind->make(reader, shape);
      reader.finish();
      shape = layer->output_shape(shape);
    } catch (const Error& e) {
      reader.finish();  // a misspelt option explains a missing one best
      std::string msg = e.what();
      // Messages from the layer start with its kind; the location says it already.
      if (msg.rfind(type + ": ", 0) == 0) msg = msg.substr(type.size() + 2);
      if (msg.rfind(where, 0) == 0) throw;
      fail("{}: {}", where, msg);
    }
    model.add(std::move(layer));
    ++index;
  }
  model.build(input);
  return model;
}

Sequential load_model_spec(const std::string& path) {
  std::ifstream file(path);
  SN_CHECK(file.good(), "{}: cannot open the model spec", path);
  std::stringstream text;
  text << file.rdbuf();
  return model_from_spec(text.str(), path);
}

std::string model_to_spec(const Sequential& model) {
  SN_CHECK(model.built(), "model is not built: call build(input_shape) first");
  json layers = json::array();
  for (size_t i = 0; i < model.size(); ++i) {
    const Layer& layer = model.layer(i);
    const LayerKind* kind = find_kind(layer.kind());
    SN_CHECK(kind != nullptr, "layer {} of kind '{}' cannot be written to a model spec", i,
             layer.kind());
    json entry = {{"type", layer.kind()}};
    entry.update(kind->write(layer));
    layers.push_back(entry);
  }
  return json{{"input", model.input_shape()}, {"layers", layers}}.dump();
}

}  // namespace scratchnet
