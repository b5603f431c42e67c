// adam.h — Adam with L2 weight decay (torch.optim.Adam) and with decoupled weight decay
// (torch.optim.AdamW), following PyTorch 1.13's single-tensor path (amsgrad=False,
// maximize=False).
//
// For each trainable parameter p with gradient g, in float, at its step t = 1, 2, ...:
//   AdamW only: p = p * (1 - lr * weight_decay)
//   Adam only:  g = g + weight_decay * p                   (when weight_decay != 0)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   bias_correction1 = 1 - beta1^t,  bias_correction2 = 1 - beta2^t     (in double)
//   step_size = lr / bias_correction1                                    (in double)
//   denom = sqrt(v) / sqrt(bias_correction2) + eps
//   p = p - step_size * m / denom
// At t = 1 this moves every element by about lr * sign(g) (exactly lr * g / (|g| + eps)).
// State per parameter: "step" (t), "exp_avg" (m) and "exp_avg_sq" (v), PyTorch's names.
#pragma once

#include <vector>

#include "scratchnet/optim/optimizer.h"

namespace scratchnet {

struct AdamOptions {
  float lr = 1e-3f;        // >= 0
  float beta1 = 0.9f;      // in [0, 1)
  float beta2 = 0.999f;    // in [0, 1)
  float eps = 1e-8f;       // >= 0
  float weight_decay = 0;  // >= 0, added to the gradient (L2)
};

// AdamOptions with torch.optim.AdamW's default weight_decay.
struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 1e-2f;  // >= 0, decoupled: shrinks p before the Adam step
};

class Adam : public Optimizer {
 public:
  // Throws on invalid options: "Adam: beta1 must be in [0, 1), got 1".
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options = {});
  Adam(std::vector<NamedParameter> params, const AdamOptions& options = {});

  void step() override;
  const AdamOptions& options() const { return options_; }

 protected:
  // decoupled: weight decay shrinks the parameter (AdamW) instead of adding to the gradient.
  Adam(const char* kind, std::vector<ParamGroup> groups, const AdamOptions& options,
       bool decoupled);

 private:
  AdamOptions options_;
  bool decoupled_;
};

// Adam with decoupled weight decay; options() reports its AdamOptions equivalent.
class AdamW : public Adam {
 public:
  // Throws on invalid options: "AdamW: eps must be at least 0, got -1".
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = {});
  AdamW(std::vector<NamedParameter> params, const AdamWOptions& options = {});
};

}  // namespace scratchnet
