// optim.h — small helpers for the optimiser tests: 1-D parameters, gradients, state lookup.
#pragma once

#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/optim/optimizer.h"

namespace scratchnet::testing {

inline Parameter make_param(std::vector<float> values) {
  const int64_t n = static_cast<int64_t>(values.size());
  Parameter p({n});
  p.value = Tensor({n}, std::move(values));
  return p;
}

inline void set_grad(Parameter& p, std::vector<float> grad) {
  p.grad = Tensor(p.value.shape(), std::move(grad));
}

inline std::vector<std::string> state_names(Optimizer& opt) {
  std::vector<std::string> names;
  for (const NamedBuffer& b : opt.state()) names.push_back(b.name);
  return names;
}

inline Tensor& state_of(Optimizer& opt, const std::string& name) {
  for (const NamedBuffer& b : opt.state())
    if (b.name == name) return *b.tensor;
  throw Error("no state named " + name);
}

}  // namespace scratchnet::testing
