// finetune.h — reusing a trained model on new data: a new classifier head, frozen layers, a
// learning rate of its own for the backbone, and gradual unfreezing.
//
//   LoadedModel m = load_model("runs/bn/model.safetensors");      // trained on MNIST
//   replace_head(m.model, 10, Init::kPyTorch, seed);              // for Fashion-MNIST's classes
//   Recipe r = ...;
//   r.finetune = {.freeze = {"features"}, .backbone_lr = 1e-4f, .unfreeze_every = 2};
//   Trainer trainer(m.model, fashion.train, &fashion.test, r);    // freezes as it trains
//
// The head is the last Linear layer and whatever follows it (a Softmax, LogSoftmax); the
// backbone is every layer before it. Layers are chosen by selectors:
//   "3"          the layer with that index (as in summary() and in "3.weight")
//   "2-5"        the layers 2 to 5, both included
//   "Conv2d"     every layer of that kind (any kind, case-insensitive: conv2d, batchnorm2d)
//   "features"   every layer before the first Flatten: the convolution blocks
//   "backbone"   every layer before the head
// A frozen layer's parameters are not trained (Parameter::trainable = false, so optimisers
// leave them and their state alone, as requires_grad=False does) and a frozen BatchNorm uses
// and keeps its running statistics even in training mode, as bn.eval() does in PyTorch.
// Gradual unfreezing (ULMFiT): every `unfreeze_every` epochs the frozen block nearest the head
// is unfrozen, so which layers train in epoch e depends only on e. A block starts at a Conv2d or
// Linear and holds the layers up to the next one (its BatchNorm, activation, pooling).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scratchnet/layer.h"
#include "scratchnet/model.h"

namespace scratchnet {

struct FinetuneOptions {
  std::vector<std::string> freeze = {};  // selectors of the layers kept fixed
  // The lr of the backbone's parameters (unset: the recipe's lr for every layer). A schedule
  // scales it as it scales the lr (PyTorch's per-group base lrs); with onecycle the backbone's
  // max_lr is max_lr * backbone_lr / lr.
  std::optional<float> backbone_lr = std::nullopt;
  int64_t unfreeze_every = 0;  // epochs between unfreezing blocks; 0: frozen layers stay frozen

  bool active() const { return !freeze.empty() || backbone_lr || unfreeze_every > 0; }
};

// Throws a one-line message naming the field ("finetune.backbone_lr must be positive, got 0").
void check_finetune(const FinetuneOptions& options);
// {"freeze": [...], "backbone_lr": 0.0001 or null, "unfreeze_every": 2}; reading checks the
// fields like recipe_from_json, naming `source`.
std::string finetune_to_json(const FinetuneOptions& options);
FinetuneOptions finetune_from_json(const std::string& json_text, const std::string& source);

// The index of the head's Linear layer; throws when the model has none.
size_t head_index(const Sequential& model);
// Replaces the head's Linear layer by a new one with `classes` outputs (>= 1), drawn by
// `init` from `seed`, and rebuilds the model; every other layer keeps its weights.
void replace_head(Sequential& model, int64_t classes, Init init, uint64_t seed);

// The indices the selectors name, sorted, each once. Throws on a selector that names no
// layer ("freeze 'conv9': no layer is of that kind or group; give ...") and when every layer
// with parameters would be frozen (nothing would train).
std::vector<size_t> select_layers(Sequential& model, const std::vector<std::string>& selectors);

// The layers frozen during epoch `epoch` (0-based) of a run with these options.
std::vector<size_t> frozen_layers(Sequential& model, const FinetuneOptions& options, int64_t epoch);
// Makes exactly the `frozen` layers fixed: their parameters untrainable and their
// BatchNorms on running statistics; every other layer trainable.
void apply_freeze(Sequential& model, const std::vector<size_t>& frozen);

}  // namespace scratchnet
