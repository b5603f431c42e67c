// recipe.h — how a model is trained: optimiser, learning-rate schedule, schedule of the data,
// preprocessing.
//
// A Recipe is stored (as JSON) in every model file, so a run can be repeated or resumed,
// and presets carry the recipes of their design documents. Its data augmentation (augment.h)
// applies to the training batches only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "scratchnet/data/augment.h"
#include "scratchnet/data/dataset.h"
#include "scratchnet/layer.h"
#include "scratchnet/optim/optimizer.h"
#include "scratchnet/train/early_stop.h"
#include "scratchnet/train/finetune.h"
#include "scratchnet/train/schedule.h"

namespace scratchnet {

struct Recipe {
  std::string optimizer = "adam";  // "sgd", "adam" or "adamw"
  float lr = 1e-3f;                // > 0
  float momentum = 0.0f;           // SGD only, >= 0
  bool nesterov = false;           // SGD only
  float weight_decay = 0.0f;       // >= 0 (L2 for SGD/Adam, decoupled for AdamW)
  int64_t batch_size = 64;         // >= 1
  int64_t epochs = 5;              // >= 1
  uint64_t seed = 1;               // initial weights, shuffling, dropout
  Init init = Init::kPyTorch;
  float label_smoothing = 0.0f;  // in [0, 1)
  Preprocess preprocess;
  ScheduleOptions schedule;  // learning-rate schedule (schedule.h); kind "none" keeps lr fixed
  FinetuneOptions finetune;  // frozen layers, backbone lr, gradual unfreezing (finetune.h)
  AugmentOptions augment;    // data augmentation of the training images (augment.h); none
  // Regularisation and model selection. l1 >= 0 adds l1 * sum |w| over the weights of every
  // Conv2d and Linear layer that trains (prunable_weights(): not biases, not BatchNorm) to the
  // loss, which train_loss then includes; weight_decay is L2, label_smoothing and Dropout
  // layers the others. validation in [0, 1): the fraction of the training set held out
  // (take_validation_split, seeded with `seed`) and evaluated after every epoch; 0: none.
  float l1 = 0.0f;
  double validation = 0;
  EarlyStopOptions early_stop;  // the best epoch's metric and when to stop (early_stop.h)
};

// Throws a one-line message naming the field ("lr must be positive, got -1",
// "schedule.gamma must be positive, got 0").
void check_recipe(const Recipe& recipe);

std::string recipe_to_json(const Recipe& recipe);
// Fields missing from the JSON keep their defaults; unknown fields are errors. The schedule is
// written as schedule_to_json() writes it ({"kind":"none"} without one), "finetune" only when
// the recipe fine-tunes (FinetuneOptions::active()), "augment" only when it augments
// (AugmentOptions::active()), "l1", "validation" and "early_stop" only when they are not their
// defaults: recipes without them read and write as before.
Recipe recipe_from_json(const std::string& json_text, const std::string& source);

std::string preprocess_to_json(const Preprocess& preprocess);
Preprocess preprocess_from_json(const std::string& json_text, const std::string& source);

// The optimiser the recipe names, over `params` or over parameter groups (a group's unset lr
// is the recipe's).
std::unique_ptr<Optimizer> make_optimizer(const Recipe& recipe, std::vector<NamedParameter> params);
std::unique_ptr<Optimizer> make_optimizer(const Recipe& recipe, std::vector<ParamGroup> groups);

}  // namespace scratchnet
