#include "scratchnet/optim/sgd.h"

#include "scratchnet/check.h"

namespace scratchnet {

std::vector<Optimizer::StateSpec> Sgd::checked_state_specs(const SgdOptions& options) {
  check_at_least_zero("SGD", "momentum", options.momentum);
  SN_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
           "SGD: nesterov requires momentum > 0 and dampening 0, got momentum {} and dampening {}",
           options.momentum, options.dampening);
  if (options.momentum == 0) return {};
  return {{"momentum_buffer", false}, {"step", true}};
}

Sgd::Sgd(std::vector<ParamGroup> groups, const SgdOptions& options)
    : Optimizer("SGD", std::move(groups), options.lr, options.weight_decay,
                checked_state_specs(options)),
      options_(options) {}

Sgd::Sgd(std::vector<NamedParameter> params, const SgdOptions& options)
    : Sgd(std::vector<ParamGroup>{{.params = std::move(params)}}, options) {}

namespace {

// The updates of elements [begin, end), with the arrays marked unaliased and the scalars
// passed by value so that the loops vectorise.
void sgd_update(float* __restrict p, const float* __restrict g, float weight_decay, float neg_lr,
                int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    float d = g[i];
    if (weight_decay != 0) d = d + weight_decay * p[i];
    p[i] = p[i] + neg_lr * d;
  }
}

void sgd_momentum_update(float* __restrict p, float* __restrict buf, const float* __restrict g,
                         float weight_decay, float neg_lr, float momentum, float keep, bool first,
                         bool nesterov, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    float d = g[i];
    if (weight_decay != 0) d = d + weight_decay * p[i];
    float b = first ? d : buf[i] * momentum + keep * d;
    buf[i] = b;
    d = nesterov ? d + momentum * b : b;
    p[i] = p[i] + neg_lr * d;
  }
}

}  // namespace

void Sgd::step() {
  std::vector<Slot*> active = begin_step();
  // Scalars as torch.optim.SGD passes them to its float kernels: momentum as is, and
  // 1 - dampening computed in double first.
  const float momentum = options_.momentum;
  const float keep = static_cast<float>(1.0 - widen(options_.dampening));
  const bool nesterov = options_.nesterov;
  for (Slot* slot : active) {
    const float weight_decay = groups_[slot->group].weight_decay;
    const float neg_lr = -groups_[slot->group].lr;
    float* p = slot->param->value.data();       // like the parameter
    const float* g = slot->param->grad.data();  // like the parameter
    const int64_t n = slot->param->value.numel();
    if (momentum == 0) {
      for_elements(n, [=](int64_t begin, int64_t end) {
        sgd_update(p, g, weight_decay, neg_lr, begin, end);
      });
      continue;
    }
    float* buf = slot->state[0].data();  // momentum_buffer, like the parameter
    float& count = slot->state[1][0];    // step
    const bool first = count == 0;
    for_elements(n, [=](int64_t begin, int64_t end) {
      sgd_momentum_update(p, buf, g, weight_decay, neg_lr, momentum, keep, first, nesterov, begin,
                          end);
    });
    count += 1.0f;
  }
  ++steps_;
}

}  // namespace scratchnet
