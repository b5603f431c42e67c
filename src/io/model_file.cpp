#include "scratchnet/io/model_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "scratchnet/check.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/train/recipe.h"

namespace scratchnet {

using json = nlohmann::json;

namespace {

constexpr const char* kFormat = "scratchnet-model/1";

// Every parameter and buffer of the model, by state_dict name.
std::vector<NamedBuffer> named_tensors(Sequential& model) {
  std::vector<NamedBuffer> all;
  for (auto& p : model.params()) all.push_back({p.name, &p.param->value});
  for (auto& b : model.buffers()) all.push_back(b);
  return all;
}

const std::string& metadata(const SafeTensors& file, const char* key, const std::string& source) {
  auto it = file.metadata.find(key);
  SN_CHECK(it != file.metadata.end(), "{}: not a scratchnet model: metadata has no '{}'", source,
           key);
  return it->second;
}

}  // namespace

SafeTensors model_to_safetensors(Sequential& model, const ModelInfo& info) {
  int64_t outputs = shape_numel(model.output_shape(model.size() - 1));
  SN_CHECK(info.class_names.empty() || static_cast<int64_t>(info.class_names.size()) == outputs,
           "cannot save a model with {} outputs and {} class names", outputs,
           info.class_names.size());
  SN_CHECK(!info.preprocess.normalize || info.preprocess.std > 0,
           "cannot save a model whose normalisation std is {}", info.preprocess.std);
  SafeTensors file;
  for (const auto& t : named_tensors(model)) {
    file.tensors[t.name] = *t.tensor;
    if (t.int8) file.int8.insert(t.name);
  }
  file.metadata["format"] = kFormat;
  file.metadata["spec"] = model_to_spec(model);
  file.metadata["preprocess"] = preprocess_to_json(info.preprocess);
  file.metadata["class_names"] = json(info.class_names).dump();
  if (!info.recipe.empty()) file.metadata["recipe"] = info.recipe;
  if (!info.metrics.empty()) file.metadata["metrics"] = info.metrics;
  if (!info.origin.empty()) file.metadata["origin"] = info.origin;
  if (!info.dataset.empty()) file.metadata["dataset"] = info.dataset;
  return file;
}

LoadedModel model_from_safetensors(const SafeTensors& file, const std::string& source) {
  const std::string& format = metadata(file, "format", source);
  SN_CHECK(format == kFormat, "{}: model format '{}' is not supported (expected '{}')", source,
           format, kFormat);
  LoadedModel loaded;
  loaded.model = model_from_spec(metadata(file, "spec", source), source + " (architecture)");
  loaded.info.preprocess =
      preprocess_from_json(metadata(file, "preprocess", source), source + " (preprocess)");
  try {
    json names = json::parse(metadata(file, "class_names", source));
    loaded.info.class_names = names.get<std::vector<std::string>>();
  } catch (const json::exception&) {
    fail("{}: class_names must be a JSON array of strings", source);
  }
  auto optional = [&](const char* key) {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string() : it->second;
  };
  loaded.info.recipe = optional("recipe");
  if (!loaded.info.recipe.empty()) recipe_from_json(loaded.info.recipe, source + " (recipe)");
  loaded.info.metrics = optional("metrics");
  SN_CHECK(loaded.info.metrics.empty() || json::accept(loaded.info.metrics),
           "{}: metrics are not valid JSON", source);
  loaded.info.origin = optional("origin");
  loaded.info.dataset = optional("dataset");

  std::vector<NamedBuffer> wanted = named_tensors(loaded.model);
  for (const auto& t : wanted) {
    auto it = file.tensors.find(t.name);
    SN_CHECK(it != file.tensors.end(), "{}: tensor '{}' is missing; the architecture needs {}",
             source, t.name, shape_str(t.tensor->shape()));
    SN_CHECK(it->second.shape() == t.tensor->shape(),
             "{}: tensor '{}' has shape {} but the architecture needs {}", source, t.name,
             shape_str(it->second.shape()), shape_str(t.tensor->shape()));
    *t.tensor = it->second;
  }
  for (const auto& [name, tensor] : file.tensors) {
    if (name.rfind("optimizer.", 0) == 0) continue;  // a checkpoint's optimiser state
    {
      bool known = false;
      for (const auto& t : wanted) known = known || t.name == name;
      SN_CHECK(known, "{}: tensor '{}' does not belong to the architecture", source, name);
    }
  }
  for (size_t i = 0; i < loaded.model.size(); ++i) {
    try {
      loaded.model.layer(i).prepare();
    } catch (const Error& e) {
      fail("{}: layer {} {}: {}", source, i, loaded.model.layer(i).kind(), e.what());
    }
  }
  int64_t outputs = shape_numel(loaded.model.output_shape(loaded.model.size() - 1));
  SN_CHECK(loaded.info.class_names.empty() ||
               static_cast<int64_t>(loaded.info.class_names.size()) == outputs,
           "{}: {} class names for a model with {} outputs", source, loaded.info.class_names.size(),
           outputs);
  return loaded;
}

void save_model(const std::string& path, Sequential& model, const ModelInfo& info) {
  write_safetensors(path, model_to_safetensors(model, info));
}

LoadedModel load_model(const std::string& path) {
  return model_from_safetensors(read_safetensors(path), path);
}

}  // namespace scratchnet
