// presets.h — the reference models, built in by name, and the recipes they are trained with.
//
// Layer indices are those of the equivalent torch.nn.Sequential, so parameter and buffer names
// ("7.weight", "9.running_var") equal PyTorch's state_dict names. Input (N, 1, 28, 28), output
// logits (N, 10); the softmax is folded into cross_entropy_loss.
//
//   basic   0 Conv2d(1, 32, 3)  1 ReLU  2 MaxPool2d(2)  3 Conv2d(32, 64, 3)  4 ReLU
//           5 MaxPool2d(2)  6 Flatten  7 Linear(1600, 128)  8 ReLU  9 Linear(128, 10)
//           225,034 parameters
//   bn      0 Conv2d(1, 32, 3, padding=1)  1 BatchNorm2d(32)  2 ReLU
//           3 Conv2d(32, 64, 3, padding=1)  4 BatchNorm2d(64)  5 ReLU  6 MaxPool2d(2)
//           7 Flatten  8 Linear(12544, 128)  9 BatchNorm1d(128)  10 ReLU  11 Linear(128, 10)
//           1,626,314 parameters
//
// Recipes (train/recipe.h):
//   basic   Adam lr 1e-3, batch 64, 5 epochs, pixels scaled to [0, 1]
//   bn      SGD lr 0.01 momentum 0.9, batch 64, 10 epochs, pixels scaled to [0, 1] and then
//           normalised as (x - 0.1307) / 0.3081 (MNIST's mean and standard deviation)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "scratchnet/model.h"
#include "scratchnet/train/recipe.h"

namespace scratchnet {

// "basic", "bn" (in this order).
std::vector<std::string> preset_names();

// The named model, built for per-sample input (1, 28, 28) and initialised with
// Init::kPyTorch from seed 0 (call init() to draw from another scheme or seed).
// Throws "unknown preset 'foo' (known: basic, bn)".
Sequential make_preset(std::string_view name);

// The named model's training recipe. Throws like make_preset for an unknown name.
Recipe preset_recipe(std::string_view name);

}  // namespace scratchnet
