// prune.h — unstructured magnitude pruning of Conv2d and Linear weights, the masks that keep a
// pruned model sparse while it is fine-tuned, and how sparse a model is.
//
//   std::vector<PruneMask> masks = prune_by_magnitude(model, {.sparsity = 0.9});
//   Trainer trainer(model, train, &test, recipe);
//   trainer.fit({.on_step = [&](const StepInfo&) { apply_masks(masks); }});  // after each step
//   SparsityReport s = sparsity_report(model);   // s.fraction() >= 0.9 (pruned weights stay 0)
//
// The prunable weights are the "weight" tensors of every Conv2d and Linear layer; biases,
// BatchNorm and every other tensor are never touched. With `sparsity` s, the round(s * n)
// weights of smallest |w| among n are set to 0 (round half to even, as Python's round):
//   PruneScope::kLayer   each layer's weight separately (n its size), like
//                        torch.nn.utils.prune.l1_unstructured(layer, "weight", amount=s);
//   PruneScope::kGlobal  all prunable weights together (n their total, one threshold), like
//                        torch.nn.utils.prune.global_unstructured(..., L1Unstructured, amount=s).
// Ties in |w| are broken by position: the earlier weight (the earlier layer, then the lower
// flat index) is pruned first, so the result is deterministic. Weights already 0 count as the
// smallest, so pruning a pruned model again to the same sparsity changes nothing. A sparsity
// close to 1 may prune a small layer entirely; the count is exact, not capped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scratchnet/model.h"

namespace scratchnet {

enum class PruneScope { kLayer, kGlobal };

struct PruneOptions {
  double sparsity = 0;  // fraction of the prunable weights to zero, in [0, 1)
  PruneScope scope = PruneScope::kLayer;
};

// Throws "prune: sparsity must be in [0, 1), got 1" for anything else (NaN included).
void check_prune_options(const PruneOptions& options);

// The prunable weights of `model`, in layer order: {"0.weight", &param} of each Conv2d and
// Linear layer.
std::vector<NamedParameter> prunable_weights(Sequential& model);

// Which weights of one tensor are kept. Like torch's "weight_mask" buffer: 1 kept, 0 pruned.
struct PruneMask {
  std::string name;  // the weight's state_dict name, "3.weight"
  Parameter* param;  // the weight, owned by the model the mask was made for
  Tensor keep;       // shaped like param->value: 1 where the weight is kept, 0 where pruned
  int64_t pruned() const;
};

// Prunes `model` in place and returns one mask per prunable weight (in layer order). Throws
// (before changing anything) for a bad sparsity or a non-finite weight, naming it.
std::vector<PruneMask> prune_by_magnitude(Sequential& model, const PruneOptions& options);

// Sets every pruned weight back to 0: call after each optimiser step (Trainer's on_step runs
// after it) so sparsity holds while fine-tuning. The masks' model must still be alive.
void apply_masks(const std::vector<PruneMask>& masks);

// Zeros among a tensor's values.
struct TensorSparsity {
  std::string name;  // "0.weight"
  std::string kind;  // the layer's kind, "Conv2d"
  int64_t zeros = 0, count = 0;
  double fraction() const { return count ? static_cast<double>(zeros) / count : 0.0; }
};

struct SparsityReport {
  std::vector<TensorSparsity> layers;  // each prunable weight, in layer order
  int64_t zeros = 0, count = 0;        // over all prunable weights
  double fraction() const { return count ? static_cast<double>(zeros) / count : 0.0; }
};

// How many prunable weights of `model` are exactly 0 (-0 included), per layer and overall.
SparsityReport sparsity_report(Sequential& model);

}  // namespace scratchnet
