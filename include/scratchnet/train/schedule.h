// schedule.h — learning-rate schedules, following PyTorch 1.13's torch.optim.lr_scheduler.
//
// A schedule is described by ScheduleOptions (stored in the Recipe, so in every model file) and
// run by an LrSchedule, which holds the learning rate in double, as PyTorch's param_groups do,
// and advances one tick per unit — an epoch, or a batch (`unit`). The Trainer gives the
// optimiser float(lr()) before every step and ticks after each unit:
//
//   LrSchedule schedule({.kind = "step", .gamma = 0.5, .step_size = 2}, 0.1, epochs, batches);
//   for (epoch...) { optimizer.set_lr(float(schedule.lr())); train_one_epoch(); schedule.step(); }
//
// Tick t is PyTorch's last_epoch: lr() at tick 0 is what the scheduler sets when it is made,
// and step() is scheduler.step(). The kinds, with `base` the recipe's lr:
//
//   none         lr stays base.
//   step         StepLR(step_size, gamma): lr *= gamma at ticks step_size, 2 step_size, ...
//   multistep    MultiStepLR(milestones, gamma): lr *= gamma at each milestone tick
//                (milestones strictly increasing, >= 1).
//   exponential  ExponentialLR(gamma): lr *= gamma every tick.
//   cosine       Linear warm-up for `warmup` ticks from warmup_start_factor * base to base, then
//                cosine annealing towards min_lr over the remaining ticks of the run:
//                SequentialLR([LinearLR(warmup_start_factor, 1.0, warmup),
//                              CosineAnnealingLR(T_max = total - warmup, eta_min = min_lr)],
//                             milestones = [warmup]);
//                with warmup = 0 plain CosineAnnealingLR(T_max = total, eta_min = min_lr).
//                total is the run's epochs (unit epoch) or epochs * batches per epoch (unit
//                step). As in PyTorch, the last tick used for training is total - 1, so min_lr
//                itself is reached only at tick total, after the last step.
//   onecycle     OneCycleLR(max_lr, total_steps = epochs * batches per epoch, pct_start,
//                anneal_strategy cos|linear, div_factor, final_div_factor, three_phase); always
//                per batch. It ignores base: it starts at max_lr / div_factor, rises to max_lr,
//                and falls to max_lr / div_factor / final_div_factor. momentum() gives the
//                momentum PyTorch's cycle_momentum=True writes into SGD's momentum or Adam's
//                betas[0], annealed inversely between max_momentum and base_momentum.
//   plateau      ReduceLROnPlateau(mode min|max, factor, patience, threshold, threshold_mode
//                rel|abs, cooldown, min_lr, eps); always per epoch, stepped with the epoch's
//                `monitor` (test_, train_ or val_ loss or accuracy): after more
//                than `patience` epochs without improvement, lr = max(lr * factor, min_lr),
//                unless that changes lr by eps or less; then `cooldown` epochs are ignored.
//
// Exactness. PyTorch computes step, multistep, exponential and cosine recursively from the
// previous lr (the chainable form, get_lr()); LrSchedule repeats the same double arithmetic in
// the same order (with the same libm cos/pow), so its lr() equals PyTorch's group['lr'] bit for
// bit on tests/golden/schedules. PyTorch's closed forms (_get_closed_form_lr, or an explicit
// LambdaLR for cosine with warm-up) give the same values up to rounding: in the goldens 192 of
// 351 ticks differ from the chainable form, in the last bits only (at most 8e-16 relative).
// One-cycle and plateau have one form. The optimiser gets float(lr()), as PyTorch's float
// kernels round the lr. One difference by design: the schedule owns the lr, so a change made to
// the optimiser's lr from outside is overwritten at the next step rather than carried on, as
// it would be by PyTorch's chainable form. One-cycle's lr at tick total (after the last step)
// is meaningless, and negative with linear annealing; the Trainer never applies it.
//
// Not done: the Trainer does not cycle momentum (cycle_momentum must stay false there), because
// Sgd and Adam cannot change momentum / beta1 during a run; momentum() is computed and tested so
// that only that setter is missing. The recipe JSON does not store the momentum fields.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace scratchnet {

// Every kind's options in one aggregate; each kind reads only its own fields (listed).
struct ScheduleOptions {
  std::string kind = "none";  // none, step, multistep, exponential, cosine, onecycle, plateau
  // "epoch" or "step" (per batch) for step, multistep, exponential and cosine; onecycle is
  // "step" only, plateau "epoch" only; "" takes the kind's default (step for onecycle).
  std::string unit = "";
  double gamma = 0.1;                    // step, multistep, exponential: > 0
  int64_t step_size = 1;                 // step: >= 1 ticks between decays
  std::vector<int64_t> milestones;       // multistep: ticks, >= 1, strictly increasing, not empty
  int64_t warmup = 0;                    // cosine: >= 0 ticks of linear warm-up, < the run's ticks
  double warmup_start_factor = 1.0 / 3;  // cosine: in (0, 1], LinearLR's default
  double min_lr = 0;                     // cosine: eta_min; plateau: lower bound; >= 0
  double max_lr = 0;                     // onecycle: > 0 (required)
  double pct_start = 0.3;                // onecycle: in (0, 1), share of steps rising
  std::string anneal_strategy = "cos";   // onecycle: cos or linear
  double div_factor = 25;                // onecycle: > 0, initial lr = max_lr / div_factor
  double final_div_factor = 1e4;         // onecycle: > 0, final lr = initial / this
  bool three_phase = false;              // onecycle: fall back to the initial lr, then below
  bool cycle_momentum = false;           // onecycle: see the note above (not in the JSON)
  double base_momentum = 0.85, max_momentum = 0.95;  // onecycle: 0 <= base <= max < 1
  std::string monitor = "test_loss";   // plateau: test_loss, test_accuracy, train_loss,
                                       // train_accuracy, val_loss, val_accuracy
  std::string mode = "min";            // plateau: min or max
  double factor = 0.1;                 // plateau: in (0, 1)
  int64_t patience = 10;               // plateau: >= 0 bad epochs tolerated
  double threshold = 1e-4;             // plateau: >= 0 (< 1 with rel)
  std::string threshold_mode = "rel";  // plateau: rel or abs
  int64_t cooldown = 0;                // plateau: >= 0
  double eps = 1e-8;                   // plateau: >= 0
};

// Throws a one-line message naming the field: "schedule.gamma must be positive, got 0".
// The checks that need the run's length are made by LrSchedule's constructor.
void check_schedule(const ScheduleOptions& options);
// "epoch" or "step": the unit a tick is, with "" resolved.
std::string schedule_unit(const ScheduleOptions& options);
// One line for people: "cosine per epoch: down to 1e-05 after 1 epoch warm-up from 0.1 x lr".
std::string describe_schedule(const ScheduleOptions& options);

// As stored in the recipe: {"kind": "step", "unit": "epoch", "step_size": 2, "gamma": 0.5},
// only the kind's own fields, every one written. Reading: missing fields keep their defaults;
// unknown fields and fields of another kind are errors naming the field and `source`.
std::string schedule_to_json(const ScheduleOptions& options);
ScheduleOptions schedule_from_json(const std::string& json_text, const std::string& source);

class LrSchedule {
 public:
  // base_lr: the optimiser's lr without a schedule (the recipe's, widened). epochs and
  // steps_per_epoch fix the length of cosine and onecycle. Throws on invalid options and on a
  // run too short for them ("schedule.warmup of 5 epochs leaves no epoch to anneal").
  LrSchedule(const ScheduleOptions& options, double base_lr, int64_t epochs,
             int64_t steps_per_epoch);

  const ScheduleOptions& options() const { return options_; }
  bool per_step() const { return per_step_; }  // ticks after every batch, else every epoch
  int64_t total() const { return total_; }     // ticks in the run (epochs or batches)
  int64_t ticks() const { return ticks_; }     // steps so far (PyTorch's last_epoch)

  double lr() const { return lr_; }              // the lr for the coming unit
  double momentum() const { return momentum_; }  // onecycle only; NaN for the other kinds

  // scheduler.step(): every kind but plateau. Onecycle throws past tick total().
  void step();
  // ReduceLROnPlateau.step(metric): plateau only.
  void step(double metric);

  // Everything that changes as the schedule runs (tick, lr, plateau counters), as JSON, for
  // checkpoints; load_state() restores it into a schedule made with the same options and
  // run length, and throws naming `source` otherwise.
  std::string state_to_json() const;
  void load_state(const std::string& json_text, const std::string& source);

 private:
  void onecycle_at(double step);

  ScheduleOptions options_;
  double base_lr_;
  bool per_step_;
  int64_t total_;
  int64_t ticks_ = 0;
  double lr_;
  double momentum_;
  // plateau
  double best_;
  int64_t bad_epochs_ = 0, cooldown_counter_ = 0;
};

}  // namespace scratchnet
