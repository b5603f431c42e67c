#include "scratchnet/presets.h"

#include <array>

#include "scratchnet/check.h"
#include "scratchnet/layers/batch_norm1d.h"
#include "scratchnet/layers/batch_norm2d.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/flatten.h"
#include "scratchnet/layers/linear.h"
#include "scratchnet/layers/max_pool2d.h"
#include "scratchnet/layers/relu.h"

namespace scratchnet {

namespace {

void add_basic(Sequential& m) {
  m.add(Conv2d({.in_channels = 1, .out_channels = 32, .kernel = 3}))      // 0: (32, 26, 26)
      .add(ReLU())                                                        // 1
      .add(MaxPool2d({.kernel = 2}))                                      // 2: (32, 13, 13)
      .add(Conv2d({.in_channels = 32, .out_channels = 64, .kernel = 3}))  // 3: (64, 11, 11)
      .add(ReLU())                                                        // 4
      .add(MaxPool2d({.kernel = 2}))                                      // 5: (64, 5, 5)
      .add(Flatten())                                                     // 6: (1600)
      .add(Linear({.in_features = 1600, .out_features = 128}))            // 7
      .add(ReLU())                                                        // 8
      .add(Linear({.in_features = 128, .out_features = 10}));             // 9: logits
}

// Output shapes per sample: (32, 28, 28) through layer 2, (64, 28, 28) through layer 5, then
// (64, 14, 14), (12544), (128) and (10).
void add_bn(Sequential& m) {
  m.add(Conv2d({.in_channels = 1, .out_channels = 32, .kernel = 3, .padding = 1}))      // 0
      .add(BatchNorm2d({.num_features = 32}))                                           // 1
      .add(ReLU())                                                                      // 2
      .add(Conv2d({.in_channels = 32, .out_channels = 64, .kernel = 3, .padding = 1}))  // 3
      .add(BatchNorm2d({.num_features = 64}))                                           // 4
      .add(ReLU())                                                                      // 5
      .add(MaxPool2d({.kernel = 2}))                                                    // 6
      .add(Flatten())                                                                   // 7
      .add(Linear({.in_features = 12544, .out_features = 128}))                         // 8
      .add(BatchNorm1d({.num_features = 128}))                                          // 9
      .add(ReLU())                                                                      // 10
      .add(Linear({.in_features = 128, .out_features = 10}));                           // 11
}

struct Preset {
  const char* name;
  void (*add_layers)(Sequential&);
  Recipe recipe;
};

constexpr size_t kNumPresets = 2;
const std::array<Preset, kNumPresets>& presets() {
  static const std::array<Preset, kNumPresets> table{{
      {"basic", add_basic, {.optimizer = "adam", .lr = 1e-3f, .batch_size = 64, .epochs = 5}},
      {"bn",
       add_bn,
       {.optimizer = "sgd",
        .lr = 0.01f,
        .momentum = 0.9f,
        .batch_size = 64,
        .epochs = 10,
        .preprocess = {.normalize = true, .mean = 0.1307f, .std = 0.3081f}}},
  }};
  return table;
}

const Preset& find_preset(std::string_view name) {
  for (const Preset& p : presets())
    if (name == p.name) return p;
  std::string known;
  for (const Preset& p : presets()) known += (known.empty() ? "" : ", ") + std::string(p.name);
  fail("unknown preset '{}' (known: {})", name, known);
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : presets()) names.emplace_back(p.name);
  return names;
}

Sequential make_preset(std::string_view name) {
  const Preset& preset = find_preset(name);
  Sequential model;
  preset.add_layers(model);
  model.build({1, 28, 28});
  model.init(Init::kPyTorch, 0);
  return model;
}

Recipe preset_recipe(std::string_view name) { return find_preset(name).recipe; }

}  // namespace scratchnet
