// sgd.h — stochastic gradient descent with momentum, dampening, Nesterov momentum and L2
// weight decay, as torch.optim.SGD (PyTorch 1.13, single-tensor path, maximize=False).
//
// For each trainable parameter p with gradient g, in float:
//   d = g + weight_decay * p                        (when weight_decay != 0)
//   if momentum != 0:
//     buf = d                                       on the parameter's first step
//     buf = momentum * buf + (1 - dampening) * d    afterwards
//     d = nesterov ? d + momentum * buf : buf
//   p = p - lr * d
// State per parameter (only when momentum != 0): "momentum_buffer" (like p) and "step" (how
// many updates it has had, which tells the first step apart).
#pragma once

#include <vector>

#include "scratchnet/optim/optimizer.h"

namespace scratchnet {

struct SgdOptions {
  float lr = 0.01f;        // >= 0
  float momentum = 0;      // >= 0
  float dampening = 0;     // any value, as in PyTorch; must be 0 with nesterov
  float weight_decay = 0;  // >= 0
  bool nesterov = false;   // requires momentum > 0 and dampening == 0
};

class Sgd : public Optimizer {
 public:
  // Throws on invalid options: "SGD: momentum must be at least 0, got -0.5".
  Sgd(std::vector<ParamGroup> groups, const SgdOptions& options = {});
  Sgd(std::vector<NamedParameter> params, const SgdOptions& options = {});

  void step() override;
  const SgdOptions& options() const { return options_; }

 private:
  static std::vector<StateSpec> checked_state_specs(const SgdOptions& options);
  SgdOptions options_;
};

}  // namespace scratchnet
