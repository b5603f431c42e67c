// optimizer.h — the interface every optimiser implements, and parameter groups.
//
// An optimiser updates Parameters (from Sequential::params() or Layer::params()) in place from
// their `grad`, following torch.optim:
//
//   Sgd sgd(model.params(), {.lr = 0.01f, .momentum = 0.9f});
//   Adam adam({{.params = features, .lr = 1e-4f}, {.params = head}}, {.lr = 1e-3f});
//   model.zero_grad(); ...forward, loss, backward...; adam.step();
//
// Parameters come in groups (torch's param_groups); a group's unset lr or weight_decay takes
// the optimiser's default. What a subclass implements:
//   step()   one update of every trainable parameter from its current grad. A parameter with
//            trainable == false is skipped entirely (no update, no state created or changed),
//            like requires_grad=False in PyTorch.
//   state()  (optional override) the per-parameter state for checkpoints.
// Per-parameter state lives in Tensors named "<param name>.<state name>" ("0.weight.exp_avg",
// "0.weight.step"): "step" is a one-element tensor counting the parameter's updates (float, as
// in PyTorch 1.13, so exact up to 2^24 steps), the others are shaped like the parameter. State
// is created when the optimiser is built for every parameter trainable then, and at the first
// step for one unfrozen later. To restore a checkpoint, build the optimiser with the same
// parameters and copy the saved tensors into those state() returns (and call set_steps).
//
// Hyper-parameters are floats here and Python floats (doubles) in torch.optim. Where torch does
// scalar arithmetic with them in double (1 - beta1, lr / bias_correction1) this code uses
// widen(x): the double nearest the shortest decimal that reads back as x (0.9f -> 0.9), so
// that a value written the same way in both gives the same arithmetic.
//
// The float arithmetic follows the order of torch's tensor operations; torch's AVX2 kernels
// fuse some multiply-adds, so results agree with PyTorch's to float rounding, not bit for bit.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "scratchnet/layer.h"

namespace scratchnet {

struct ParamGroup {
  std::vector<NamedParameter> params = {};
  std::optional<float> lr = std::nullopt;            // unset: the optimiser's lr
  std::optional<float> weight_decay = std::nullopt;  // unset: the optimiser's weight_decay
};

class Optimizer {
 public:
  virtual ~Optimizer();

  const std::string& kind() const { return kind_; }  // "SGD", "Adam", "AdamW"
  virtual void step() = 0;
  // Zeroes the grad of every parameter, frozen ones included (optimizer.zero_grad(
  // set_to_none=False)).
  void zero_grad();

  size_t num_groups() const { return groups_.size(); }
  float lr(size_t group = 0) const;
  void set_lr(float lr);  // sets every group's lr (for schedules), >= 0
  void set_group_lr(size_t group, float lr);
  float weight_decay(size_t group = 0) const;
  // Number of step() calls made (or restored with set_steps).
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps);

  // Every state tensor of every parameter that has state, in group then parameter order.
  virtual std::vector<NamedBuffer> state();

  // The double nearest the shortest decimal form of x (0.9f -> 0.9, 1e-3f -> 0.001).
  static double widen(float x);

 protected:
  // A per-parameter state tensor: one element ("step") or shaped like the parameter.
  struct StateSpec {
    std::string name;
    bool scalar;
  };
  struct Group {
    float lr;
    float weight_decay;
  };
  // One parameter as the optimiser holds it. state is empty until created, then one Tensor per
  // StateSpec, in order.
  struct Slot {
    std::string name;
    Parameter* param;
    size_t group;
    std::vector<Tensor> state;
  };

  // Validates groups and defaults (messages start with `kind`) and creates the state of every
  // trainable parameter.
  Optimizer(std::string kind, std::vector<ParamGroup> groups, float default_lr,
            float default_weight_decay, std::vector<StateSpec> state_specs);

  // For step(): checks that every trainable parameter's grad matches its value and creates
  // missing state, before anything is changed. Returns the trainable slots.
  std::vector<Slot*> begin_step();
  // For step(): calls fn(begin, end) over [0, numel) in chunks, on several threads when numel
  // is large. Only for element-wise updates, whose results do not depend on the split.
  static void for_elements(int64_t numel, const std::function<void(int64_t, int64_t)>& fn);
  // Throws "<kind>: <what> must be at least 0, got <value>" unless value >= 0 (NaN fails).
  static void check_at_least_zero(const std::string& kind, const char* what, float value);

  std::string kind_;
  std::vector<Group> groups_;
  std::vector<Slot> slots_;
  std::vector<StateSpec> state_specs_;
  int64_t steps_ = 0;

 private:
  void check_group(size_t group) const;
  void create_state(Slot& slot) const;
};

}  // namespace scratchnet
