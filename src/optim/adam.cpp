#include "scratchnet/optim/adam.h"

#include <cmath>

#include "scratchnet/check.h"

namespace scratchnet {

namespace {

// Validates what the Optimizer base does not (lr and weight_decay): eps and the betas, in
// torch.optim.Adam's order.
void check_adam_options(const char* kind, const AdamOptions& options) {
  SN_CHECK(options.eps >= 0, "{}: eps must be at least 0, got {}", kind, options.eps);
  SN_CHECK(options.beta1 >= 0 && options.beta1 < 1, "{}: beta1 must be in [0, 1), got {}", kind,
           options.beta1);
  SN_CHECK(options.beta2 >= 0 && options.beta2 < 1, "{}: beta2 must be in [0, 1), got {}", kind,
           options.beta2);
}

// The scalars of one step of one parameter, as torch.optim.Adam / AdamW compute them: from
// Python floats (doubles), rounded to float where torch passes them to a tensor kernel.
struct AdamStep {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps;
  float l2;      // Adam: weight_decay; AdamW: 0
  float shrink;  // AdamW: 1 - lr * weight_decay; Adam: 1
  float bias_correction2_sqrt, neg_step_size;
};

// lr .. weight_decay widened to double; t is the parameter's step count after this step.
AdamStep adam_step(double lr, double beta1, double beta2, double eps, double weight_decay,
                   bool decoupled, double t) {
  const double bias_correction1 = 1 - std::pow(beta1, t);
  const double bias_correction2 = 1 - std::pow(beta2, t);
  return {.beta1 = static_cast<float>(beta1),
          .beta2 = static_cast<float>(beta2),
          .one_minus_beta1 = static_cast<float>(1 - beta1),
          .one_minus_beta2 = static_cast<float>(1 - beta2),
          .eps = static_cast<float>(eps),
          .l2 = decoupled ? 0.0f : static_cast<float>(weight_decay),
          .shrink = static_cast<float>(decoupled ? 1 - lr * weight_decay : 1.0),
          .bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2)),
          .neg_step_size = static_cast<float>(-(lr / bias_correction1))};
}

// Elements [begin, end) of one parameter p with gradient g and moments m, v. The float
// arithmetic follows the order of torch's tensor operations (mul_ then add_, addcmul_,
// addcdiv_); torch's AVX2 kernels fuse some of these multiply-adds, so results agree with it
// to float rounding rather than bit for bit.
// The scalars are copied and the arrays marked unaliased so that the loop vectorises.
void adam_update(float* __restrict p, const float* __restrict g, float* __restrict m,
                 float* __restrict v, int64_t begin, int64_t end, const AdamStep& k) {
  const AdamStep c = k;
  for (int64_t i = begin; i < end; ++i) {
    float pi = p[i] * c.shrink;
    float gi = g[i];
    if (c.l2 != 0) gi = gi + c.l2 * pi;
    float mi = m[i] * c.beta1;
    mi = mi + c.one_minus_beta1 * gi;
    float vi = v[i] * c.beta2;
    vi = vi + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float denom = std::sqrt(vi) / c.bias_correction2_sqrt + c.eps;
    p[i] = pi + c.neg_step_size * mi / denom;
  }
}

}  // namespace

Adam::Adam(const char* kind, std::vector<ParamGroup> groups, const AdamOptions& options,
           bool decoupled)
    : Optimizer(kind, std::move(groups), options.lr, options.weight_decay,
                {{"step", true}, {"exp_avg", false}, {"exp_avg_sq", false}}),
      options_(options),
      decoupled_(decoupled) {
  check_adam_options(kind, options_);
}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Adam("Adam", std::move(groups), options, false) {}

Adam::Adam(std::vector<NamedParameter> params, const AdamOptions& options)
    : Adam(std::vector<ParamGroup>{{.params = std::move(params)}}, options) {}

void Adam::step() {
  for (Slot* slot : begin_step()) {
    const Group& group = groups_[slot->group];
    float& t = slot->state[0][0];  // step
    t += 1.0f;
    const AdamStep k = adam_step(widen(group.lr), widen(options_.beta1), widen(options_.beta2),
                                 widen(options_.eps), widen(group.weight_decay), decoupled_, t);
    Parameter& param = *slot->param;
    float* p = param.value.data();       // like the parameter
    const float* g = param.grad.data();  // like the parameter
    float* m = slot->state[1].data();    // exp_avg
    float* v = slot->state[2].data();    // exp_avg_sq
    for_elements(param.value.numel(),
                 [&](int64_t begin, int64_t end) { adam_update(p, g, m, v, begin, end, k); });
  }
  ++steps_;
}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& o)
    : Adam("AdamW", std::move(groups),
           {.lr = o.lr,
            .beta1 = o.beta1,
            .beta2 = o.beta2,
            .eps = o.eps,
            .weight_decay = o.weight_decay},
           true) {}

AdamW::AdamW(std::vector<NamedParameter> params, const AdamWOptions& options)
    : AdamW(std::vector<ParamGroup>{{.params = std::move(params)}}, options) {}

}  // namespace scratchnet
