// model_file.h — a trained model in one file: weights plus everything needed to use it.
//
// The file is safetensors (safetensors.h): every parameter and buffer under its PyTorch
// state_dict name ("0.weight", "1.running_mean"), float32, so
// torch.nn.Sequential(...).load_state_dict(safetensors.torch.load_file(path)) works, and
// __metadata__ holds (each value a string, most of them JSON):
//   format        "scratchnet-model/1"
//   spec          the architecture (model_spec.h)
//   preprocess    {"scale": 1/255, "normalize": bool, "mean": m, "std": s}
//   class_names   ["0", "1", ...]
//   recipe        the training recipe (recipe.h), or absent
//   metrics       final metrics, e.g. {"test_accuracy": 0.99, ...}, or absent
//   origin        where the weights came from (a file it was fine-tuned from), or absent
//   dataset       the data set it was trained on (a name or a directory), or absent
// Loading checks everything: format, a buildable spec, every tensor present with the shape
// the architecture needs and nothing extra (but a checkpoint's optimiser state, the tensors
// named "optimizer.*", which loading a model ignores). Errors name the file and what is wrong.
#pragma once

#include <string>
#include <vector>

#include "scratchnet/data/dataset.h"
#include "scratchnet/io/safetensors.h"
#include "scratchnet/model.h"

namespace scratchnet {

struct ModelInfo {
  Preprocess preprocess;
  std::vector<std::string> class_names;
  std::string recipe;   // JSON or empty
  std::string metrics;  // JSON or empty
  std::string origin;   // free text or empty
  std::string dataset;  // name or directory, or empty
};

struct LoadedModel {
  Sequential model;
  ModelInfo info;
};

// The tensors and metadata of a model file (for writers that add their own entries).
SafeTensors model_to_safetensors(Sequential& model, const ModelInfo& info);
// Rebuilds a model from model_to_safetensors' output; `source` names it in messages.
LoadedModel model_from_safetensors(const SafeTensors& file, const std::string& source);

// Written to a temporary name and renamed: a crash never leaves a half-written model.
void save_model(const std::string& path, Sequential& model, const ModelInfo& info);
LoadedModel load_model(const std::string& path);

}  // namespace scratchnet
