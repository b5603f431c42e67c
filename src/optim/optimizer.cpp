#include "scratchnet/optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_set>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {
// Element-wise updates of parameters up to this size run on the calling thread; larger ones
// are split into chunks of this size over the thread pool.
constexpr int64_t kChunk = int64_t{1} << 15;
}  // namespace

Optimizer::~Optimizer() = default;

Optimizer::Optimizer(std::string kind, std::vector<ParamGroup> groups, float default_lr,
                     float default_weight_decay, std::vector<StateSpec> state_specs)
    : kind_(std::move(kind)), state_specs_(std::move(state_specs)) {
  check_at_least_zero(kind_, "lr", default_lr);
  check_at_least_zero(kind_, "weight_decay", default_weight_decay);
  std::unordered_set<const Parameter*> seen;
  std::unordered_set<std::string> names;
  for (size_t g = 0; g < groups.size(); ++g) {
    const ParamGroup& in = groups[g];
    Group group{in.lr.value_or(default_lr), in.weight_decay.value_or(default_weight_decay)};
    SN_CHECK(group.lr >= 0, "{}: lr of group {} must be at least 0, got {}", kind_, g, group.lr);
    SN_CHECK(group.weight_decay >= 0, "{}: weight_decay of group {} must be at least 0, got {}",
             kind_, g, group.weight_decay);
    for (const NamedParameter& p : in.params) {
      SN_CHECK(p.param != nullptr, "{}: parameter {} is null", kind_, p.name);
      SN_CHECK(seen.insert(p.param).second, "{}: parameter {} appears more than once", kind_,
               p.name);
      SN_CHECK(names.insert(p.name).second,
               "{}: two parameters are named {}; names must be unique (they name the state)", kind_,
               p.name);
      slots_.push_back({p.name, p.param, g, {}});
    }
    groups_.push_back(group);
  }
  SN_CHECK(!slots_.empty(), "{}: got an empty parameter list", kind_);
  for (Slot& slot : slots_)
    if (slot.param->trainable) create_state(slot);
}

void Optimizer::zero_grad() {
  for (Slot& slot : slots_) slot.param->grad.zero();
}

void Optimizer::check_group(size_t group) const {
  SN_CHECK(group < groups_.size(), "{}: group {} is out of range (the optimiser has {} groups)",
           kind_, group, groups_.size());
}

float Optimizer::lr(size_t group) const {
  check_group(group);
  return groups_[group].lr;
}

void Optimizer::set_lr(float lr) {
  check_at_least_zero(kind_, "lr", lr);
  for (Group& g : groups_) g.lr = lr;
}

void Optimizer::set_group_lr(size_t group, float lr) {
  check_group(group);
  check_at_least_zero(kind_, "lr", lr);
  groups_[group].lr = lr;
}

float Optimizer::weight_decay(size_t group) const {
  check_group(group);
  return groups_[group].weight_decay;
}

void Optimizer::set_steps(int64_t steps) {
  SN_CHECK(steps >= 0, "{}: steps must be at least 0, got {}", kind_, steps);
  steps_ = steps;
}

std::vector<NamedBuffer> Optimizer::state() {
  std::vector<NamedBuffer> out;
  for (Slot& slot : slots_)
    for (size_t i = 0; i < slot.state.size(); ++i)
      out.push_back({slot.name + "." + state_specs_[i].name, &slot.state[i]});
  return out;
}

double Optimizer::widen(float x) {
  if (!std::isfinite(x)) return x;
  char text[64];
  auto written = std::to_chars(text, text + sizeof text, x);  // shortest round-trip form
  double wide = x;
  std::from_chars(text, written.ptr, wide);
  return wide;
}

void Optimizer::create_state(Slot& slot) const {
  slot.state.clear();
  for (const StateSpec& spec : state_specs_)
    slot.state.emplace_back(spec.scalar ? Shape{} : slot.param->value.shape());  // zeros
}

std::vector<Optimizer::Slot*> Optimizer::begin_step() {
  std::vector<Slot*> active;
  for (Slot& slot : slots_) {
    const Parameter& p = *slot.param;
    if (!p.trainable) continue;
    SN_CHECK(p.grad.shape() == p.value.shape(),
             "{}: parameter {} has a gradient of shape {}, expected {} like its value", kind_,
             slot.name, shape_str(p.grad.shape()), shape_str(p.value.shape()));
    if (slot.state.empty()) create_state(slot);
    for (size_t i = 0; i < slot.state.size(); ++i) {
      Shape want = state_specs_[i].scalar ? Shape{} : p.value.shape();
      SN_CHECK(slot.state[i].shape() == want, "{}: state {}.{} has shape {}, expected {}", kind_,
               slot.name, state_specs_[i].name, shape_str(slot.state[i].shape()), shape_str(want));
    }
    active.push_back(&slot);
  }
  return active;
}

void Optimizer::for_elements(int64_t numel, const std::function<void(int64_t, int64_t)>& fn) {
  if (numel <= kChunk) {
    if (numel > 0) fn(0, numel);
    return;
  }
  parallel_for((numel + kChunk - 1) / kChunk, [&](int64_t begin, int64_t end) {
    fn(begin * kChunk, std::min(end * kChunk, numel));
  });
}

void Optimizer::check_at_least_zero(const std::string& kind, const char* what, float value) {
  SN_CHECK(value >= 0, "{}: {} must be at least 0, got {}", kind, what, value);
}

}  // namespace scratchnet
