#include "scratchnet/train/schedule.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>

#include "scratchnet/check.h"

namespace scratchnet {

using json = nlohmann::json;

namespace {

constexpr double kPi = std::numbers::pi;  // Python's math.pi
constexpr const char* kKinds[] = {"none",   "step",     "multistep", "exponential",
                                  "cosine", "onecycle", "plateau"};

// The recipe JSON fields of each kind besides "kind".
std::vector<const char*> kind_fields(const std::string& kind) {
  if (kind == "step") return {"unit", "step_size", "gamma"};
  if (kind == "multistep") return {"unit", "milestones", "gamma"};
  if (kind == "exponential") return {"unit", "gamma"};
  if (kind == "cosine") return {"unit", "warmup", "warmup_start_factor", "min_lr"};
  if (kind == "onecycle")
    return {"unit",       "max_lr",           "pct_start",  "anneal_strategy",
            "div_factor", "final_div_factor", "three_phase"};
  if (kind == "plateau")
    return {"unit",      "monitor",        "mode",     "factor", "patience",
            "threshold", "threshold_mode", "cooldown", "min_lr", "eps"};
  return {};
}

bool is_kind(const std::string& kind) {
  return std::find(std::begin(kKinds), std::end(kKinds), kind) != std::end(kKinds);
}

bool listed(const std::vector<const char*>& names, const std::string& name) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
}

// Whether some kind has the field.
bool known_field(const std::string& name) {
  return name == "kind" || std::any_of(std::begin(kKinds), std::end(kKinds),
                                       [&](const char* k) { return listed(kind_fields(k), name); });
}

void check_positive(double value, const char* field) {
  SN_CHECK(value > 0 && std::isfinite(value), "schedule.{} must be positive, got {}", field, value);
}

void check_at_least_zero(double value, const char* field) {
  SN_CHECK(value >= 0 && std::isfinite(value), "schedule.{} must be at least 0, got {}", field,
           value);
}

// Non-finite doubles (a plateau's initial best) as strings, since JSON has no infinity.
json number(double x) {
  if (std::isfinite(x)) return x;
  return std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf");
}

double number_from(const json& j, const std::string& source) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.get<std::string>();
  SN_CHECK(s == "inf" || s == "-inf" || s == "nan",
           "{}: the schedule state is malformed: '{}' is not a number", source, s);
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  return s == "inf" ? std::numeric_limits<double>::infinity()
                    : -std::numeric_limits<double>::infinity();
}

template <typename T>
bool fits(const json& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v.is_boolean();
  else if constexpr (std::is_same_v<T, std::string>)
    return v.is_string();
  else if constexpr (std::is_floating_point_v<T>)
    return v.is_number();
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
    return v.is_array() &&
           std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_number_integer(); });
  else
    return v.is_number_integer();
}

template <typename T>
void read(const json& j, const char* key, T& out, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end()) return;
  SN_CHECK(fits<T>(*it), "{}: schedule field '{}' has the wrong type: {}", source, key, it->dump());
  out = it->get<T>();
}

// PyTorch's OneCycleLR._annealing_cos / _annealing_linear.
double anneal(bool cosine, double start, double end, double pct) {
  if (cosine) {
    double cos_out = std::cos(kPi * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
  }
  return (end - start) * pct + start;
}

std::string plural(int64_t n, const std::string& unit) {
  return fmt::format("{} {}{}", n, unit, n == 1 ? "" : "s");
}

}  // namespace

std::string schedule_unit(const ScheduleOptions& o) {
  if (!o.unit.empty()) return o.unit;
  return o.kind == "onecycle" ? "step" : "epoch";
}

void check_schedule(const ScheduleOptions& o) {
  SN_CHECK(is_kind(o.kind),
           "schedule.kind must be none, step, multistep, exponential, cosine, onecycle or "
           "plateau, got '{}'",
           o.kind);
  SN_CHECK(o.unit.empty() || o.unit == "epoch" || o.unit == "step",
           "schedule.unit must be epoch or step, got '{}'", o.unit);
  SN_CHECK(o.kind != "onecycle" || schedule_unit(o) == "step",
           "schedule.unit must be step for onecycle (it changes the lr every batch), got '{}'",
           o.unit);
  SN_CHECK(o.kind != "plateau" || schedule_unit(o) == "epoch",
           "schedule.unit must be epoch for plateau (it follows an epoch's metric), got '{}'",
           o.unit);
  if (o.kind == "step" || o.kind == "multistep" || o.kind == "exponential")
    check_positive(o.gamma, "gamma");
  if (o.kind == "step")
    SN_CHECK(o.step_size >= 1, "schedule.step_size must be at least 1, got {}", o.step_size);
  if (o.kind == "multistep") {
    SN_CHECK(!o.milestones.empty(), "schedule.milestones must list at least one tick");
    SN_CHECK(o.milestones.front() >= 1, "schedule.milestones must be at least 1, got {}",
             fmt::join(o.milestones, ", "));
    for (size_t i = 1; i < o.milestones.size(); ++i)
      SN_CHECK(o.milestones[i] > o.milestones[i - 1],
               "schedule.milestones must be strictly increasing, got {}",
               fmt::join(o.milestones, ", "));
  }
  if (o.kind == "cosine") {
    SN_CHECK(o.warmup >= 0, "schedule.warmup must be at least 0, got {}", o.warmup);
    SN_CHECK(o.warmup_start_factor > 0 && o.warmup_start_factor <= 1,
             "schedule.warmup_start_factor must be in (0, 1], got {}", o.warmup_start_factor);
  }
  if (o.kind == "cosine" || o.kind == "plateau") check_at_least_zero(o.min_lr, "min_lr");
  if (o.kind == "onecycle") {
    check_positive(o.max_lr, "max_lr");
    SN_CHECK(o.pct_start > 0 && o.pct_start < 1, "schedule.pct_start must be in (0, 1), got {}",
             o.pct_start);
    SN_CHECK(o.anneal_strategy == "cos" || o.anneal_strategy == "linear",
             "schedule.anneal_strategy must be cos or linear, got '{}'", o.anneal_strategy);
    check_positive(o.div_factor, "div_factor");
    check_positive(o.final_div_factor, "final_div_factor");
    SN_CHECK(o.base_momentum >= 0 && o.base_momentum <= o.max_momentum && o.max_momentum < 1,
             "schedule.base_momentum and max_momentum must satisfy 0 <= base <= max < 1, got {} "
             "and {}",
             o.base_momentum, o.max_momentum);
  }
  if (o.kind == "plateau") {
    SN_CHECK(o.monitor == "test_loss" || o.monitor == "test_accuracy" ||
                 o.monitor == "train_loss" || o.monitor == "train_accuracy" ||
                 o.monitor == "val_loss" || o.monitor == "val_accuracy",
             "schedule.monitor must be test_loss, test_accuracy, train_loss, train_accuracy, "
             "val_loss or val_accuracy, got '{}'",
             o.monitor);
    SN_CHECK(o.mode == "min" || o.mode == "max", "schedule.mode must be min or max, got '{}'",
             o.mode);
    SN_CHECK(o.factor > 0 && o.factor < 1, "schedule.factor must be in (0, 1), got {}", o.factor);
    SN_CHECK(o.patience >= 0, "schedule.patience must be at least 0, got {}", o.patience);
    SN_CHECK(o.threshold_mode == "rel" || o.threshold_mode == "abs",
             "schedule.threshold_mode must be rel or abs, got '{}'", o.threshold_mode);
    check_at_least_zero(o.threshold, "threshold");
    SN_CHECK(o.threshold_mode == "abs" || o.threshold < 1,
             "schedule.threshold must be below 1 with threshold_mode rel, got {}", o.threshold);
    SN_CHECK(o.cooldown >= 0, "schedule.cooldown must be at least 0, got {}", o.cooldown);
    check_at_least_zero(o.eps, "eps");
  }
}

std::string describe_schedule(const ScheduleOptions& o) {
  const std::string unit = schedule_unit(o);
  const std::string head = fmt::format("{} per {}", o.kind, unit);
  if (o.kind == "step")
    return fmt::format("{}: x{} every {}", head, o.gamma, plural(o.step_size, unit));
  if (o.kind == "multistep")
    return fmt::format("{}: x{} at {}s {}", head, o.gamma, unit, fmt::join(o.milestones, ", "));
  if (o.kind == "exponential") return fmt::format("{}: x{} every {}", head, o.gamma, unit);
  if (o.kind == "cosine") {
    std::string warm = o.warmup == 0 ? ""
                                     : fmt::format(" after {} warm-up from {:.4g} x lr",
                                                   plural(o.warmup, unit), o.warmup_start_factor);
    return fmt::format("{}: down to {}{}", head, o.min_lr, warm);
  }
  if (o.kind == "onecycle") {
    double initial = o.max_lr / o.div_factor;
    return fmt::format("{}: {} up to {} over {}% of the steps, down to {} ({}{})", head, initial,
                       o.max_lr, o.pct_start * 100, initial / o.final_div_factor, o.anneal_strategy,
                       o.three_phase ? ", three phases" : "");
  }
  if (o.kind == "plateau")
    return fmt::format(
        "{}: x{} (not below {}) after {} without a {} of {} ({}) in {}{}", head, o.factor, o.min_lr,
        plural(o.patience + 1, "epoch"), o.mode == "min" ? "decrease" : "increase", o.threshold,
        o.threshold_mode, o.monitor,
        o.cooldown > 0 ? fmt::format(", then {} of cooldown", plural(o.cooldown, "epoch")) : "");
  return "constant lr";
}

std::string schedule_to_json(const ScheduleOptions& o) {
  json all = {{"kind", o.kind},
              {"unit", schedule_unit(o)},
              {"gamma", o.gamma},
              {"step_size", o.step_size},
              {"milestones", o.milestones},
              {"warmup", o.warmup},
              {"warmup_start_factor", o.warmup_start_factor},
              {"min_lr", o.min_lr},
              {"max_lr", o.max_lr},
              {"pct_start", o.pct_start},
              {"anneal_strategy", o.anneal_strategy},
              {"div_factor", o.div_factor},
              {"final_div_factor", o.final_div_factor},
              {"three_phase", o.three_phase},
              {"monitor", o.monitor},
              {"mode", o.mode},
              {"factor", o.factor},
              {"patience", o.patience},
              {"threshold", o.threshold},
              {"threshold_mode", o.threshold_mode},
              {"cooldown", o.cooldown},
              {"eps", o.eps}};
  json out = {{"kind", o.kind}};
  for (const char* field : kind_fields(o.kind)) out[field] = all[field];
  return out.dump();
}

ScheduleOptions schedule_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string why = e.what();
    fail("{}: schedule is not valid JSON: {}", source, why.substr(why.find(' ') + 1));
  }
  SN_CHECK(j.is_object(), "{}: schedule must be a JSON object", source);
  ScheduleOptions o;
  read(j, "kind", o.kind, source);
  SN_CHECK(is_kind(o.kind),
           "{}: schedule kind must be none, step, multistep, exponential, cosine, onecycle or "
           "plateau, got '{}'",
           source, o.kind);
  const std::vector<const char*> own = kind_fields(o.kind);
  for (const auto& [key, value] : j.items()) {
    SN_CHECK(known_field(key), "{}: unknown schedule field '{}'", source, key);
    SN_CHECK(key == "kind" || listed(own, key),
             "{}: schedule field '{}' does not apply to the {} schedule", source, key, o.kind);
  }
  read(j, "unit", o.unit, source);
  read(j, "gamma", o.gamma, source);
  read(j, "step_size", o.step_size, source);
  read(j, "milestones", o.milestones, source);
  read(j, "warmup", o.warmup, source);
  read(j, "warmup_start_factor", o.warmup_start_factor, source);
  read(j, "min_lr", o.min_lr, source);
  read(j, "max_lr", o.max_lr, source);
  read(j, "pct_start", o.pct_start, source);
  read(j, "anneal_strategy", o.anneal_strategy, source);
  read(j, "div_factor", o.div_factor, source);
  read(j, "final_div_factor", o.final_div_factor, source);
  read(j, "three_phase", o.three_phase, source);
  read(j, "monitor", o.monitor, source);
  read(j, "mode", o.mode, source);
  read(j, "factor", o.factor, source);
  read(j, "patience", o.patience, source);
  read(j, "threshold", o.threshold, source);
  read(j, "threshold_mode", o.threshold_mode, source);
  read(j, "cooldown", o.cooldown, source);
  read(j, "eps", o.eps, source);
  try {
    check_schedule(o);
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
  return o;
}

LrSchedule::LrSchedule(const ScheduleOptions& options, double base_lr, int64_t epochs,
                       int64_t steps_per_epoch)
    : options_(options), base_lr_(base_lr), lr_(base_lr) {
  check_schedule(options_);
  SN_CHECK(base_lr > 0 && std::isfinite(base_lr), "schedule: the base lr must be positive, got {}",
           base_lr);
  SN_CHECK(epochs >= 1 && steps_per_epoch >= 1,
           "schedule: a run needs at least 1 epoch of at least 1 step, got {} of {}", epochs,
           steps_per_epoch);
  per_step_ = schedule_unit(options_) == "step";
  total_ = per_step_ ? epochs * steps_per_epoch : epochs;
  momentum_ = std::numeric_limits<double>::quiet_NaN();
  best_ = (options_.mode == "min" ? 1 : -1) * std::numeric_limits<double>::infinity();
  const std::string unit = schedule_unit(options_);
  if (options_.kind == "cosine") {
    SN_CHECK(options_.warmup < total_,
             "schedule.warmup of {} leaves no {} to anneal in a run of {}",
             plural(options_.warmup, unit), unit, plural(total_, unit));
    if (options_.warmup > 0) lr_ = base_lr_ * options_.warmup_start_factor;  // LinearLR, tick 0
  }
  if (options_.kind == "onecycle") {
    // Every phase must span more than 0 steps, or PyTorch divides by zero in it.
    const double rise = options_.pct_start * static_cast<double>(total_) - 1;
    const double mid = options_.three_phase ? 2 * options_.pct_start * total_ - 2 : rise;
    SN_CHECK(rise > 0 && static_cast<double>(total_ - 1) - mid > 0,
             "schedule.pct_start {} leaves a one-cycle phase without steps in a run of {} (the "
             "rise needs pct_start x steps > 1, the fall at least a step more)",
             options_.pct_start, plural(total_, "step"));
    onecycle_at(0);
  }
}

void LrSchedule::onecycle_at(double step) {
  const ScheduleOptions& o = options_;
  const double initial = o.max_lr / o.div_factor, min_lr = initial / o.final_div_factor;
  const double hi = o.max_momentum, lo = o.base_momentum;
  struct Phase {
    double end, start_lr, end_lr, start_momentum, end_momentum;
  };
  const double total = static_cast<double>(total_);
  std::vector<Phase> phases;
  if (o.three_phase)
    phases = {{o.pct_start * total - 1, initial, o.max_lr, hi, lo},
              {2 * o.pct_start * total - 2, o.max_lr, initial, lo, hi},
              {total - 1, initial, min_lr, hi, hi}};
  else
    phases = {{o.pct_start * total - 1, initial, o.max_lr, hi, lo},
              {total - 1, o.max_lr, min_lr, lo, hi}};
  const bool cosine = o.anneal_strategy == "cos";
  double start = 0;
  for (size_t i = 0; i < phases.size(); ++i) {
    const Phase& p = phases[i];
    if (step <= p.end || i + 1 == phases.size()) {
      double pct = (step - start) / (p.end - start);
      lr_ = anneal(cosine, p.start_lr, p.end_lr, pct);
      momentum_ = anneal(cosine, p.start_momentum, p.end_momentum, pct);
      return;
    }
    start = p.end;
  }
}

void LrSchedule::step() {
  const ScheduleOptions& o = options_;
  SN_CHECK(o.kind != "plateau", "the plateau schedule steps with a metric: call step(metric)");
  SN_CHECK(o.kind != "onecycle" || ticks_ < total_,
           "the onecycle schedule has {}: it cannot step again", plural(total_, "step"));
  const int64_t t = ++ticks_;
  if (o.kind == "step") {
    if (t % o.step_size == 0) lr_ = lr_ * o.gamma;
  } else if (o.kind == "multistep") {
    // Milestones are distinct, so gamma ** count is gamma ** 1.
    if (std::binary_search(o.milestones.begin(), o.milestones.end(), t))
      lr_ = lr_ * std::pow(o.gamma, 1.0);
  } else if (o.kind == "exponential") {
    lr_ = lr_ * o.gamma;
  } else if (o.kind == "cosine") {
    const int64_t warmup = o.warmup;
    const double s = o.warmup_start_factor, eta = o.min_lr;
    if (t < warmup) {
      // LinearLR.get_lr with end_factor 1.
      lr_ = lr_ * (1. + (1.0 - s) / (static_cast<double>(warmup) * s +
                                     static_cast<double>(t - 1) * (1.0 - s)));
    } else if (t == warmup) {
      // SequentialLR steps CosineAnnealingLR with step(0): its closed form at 0.
      lr_ = eta + (base_lr_ - eta) * (1 + std::cos(kPi * 0.0 / (total_ - warmup))) / 2;
    } else {
      // CosineAnnealingLR.get_lr at its own tick u.
      const int64_t u = t - warmup, period = total_ - warmup;
      const double tmax = static_cast<double>(period);
      if ((u - 1 - period) % (2 * period) == 0)
        lr_ = lr_ + (base_lr_ - eta) * (1 - std::cos(kPi / tmax)) / 2;
      else
        lr_ = (1 + std::cos(kPi * static_cast<double>(u) / tmax)) /
                  (1 + std::cos(kPi * static_cast<double>(u - 1) / tmax)) * (lr_ - eta) +
              eta;
    }
  } else if (o.kind == "onecycle") {
    onecycle_at(static_cast<double>(t));
  }
}

void LrSchedule::step(double metric) {
  const ScheduleOptions& o = options_;
  SN_CHECK(o.kind == "plateau", "the {} schedule steps without a metric: call step()", o.kind);
  ++ticks_;
  bool better;
  if (o.mode == "min")
    better = o.threshold_mode == "rel" ? metric < best_ * (1. - o.threshold)
                                       : metric < best_ - o.threshold;
  else
    better = o.threshold_mode == "rel" ? metric > best_ * (o.threshold + 1.)
                                       : metric > best_ + o.threshold;
  if (better) {
    best_ = metric;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    bad_epochs_ = 0;  // bad epochs in cooldown do not count
  }
  if (bad_epochs_ > o.patience) {
    const double lowered = std::max(lr_ * o.factor, o.min_lr);
    if (lr_ - lowered > o.eps) lr_ = lowered;
    cooldown_counter_ = o.cooldown;
    bad_epochs_ = 0;
  }
}

std::string LrSchedule::state_to_json() const {
  return json{{"kind", options_.kind},
              {"total", total_},
              {"ticks", ticks_},
              {"lr", number(lr_)},
              {"momentum", number(momentum_)},
              {"best", number(best_)},
              {"bad_epochs", bad_epochs_},
              {"cooldown_counter", cooldown_counter_}}
      .dump();
}

void LrSchedule::load_state(const std::string& text, const std::string& source) {
  const std::string& kind = options_.kind;
  try {
    json j = json::parse(text);
    const std::string theirs = j.at("kind").get<std::string>();
    SN_CHECK(theirs == kind, "{}: the saved schedule is {}, this run's is {}", source, theirs,
             kind);
    const int64_t total = j.at("total").get<int64_t>();
    const std::string unit = schedule_unit(options_);
    SN_CHECK(total == total_ || (kind != "cosine" && kind != "onecycle"),
             "{}: the saved {} schedule spans {}, this run {}: the length of a cosine or "
             "onecycle run cannot change",
             source, kind, plural(total, unit), plural(total_, unit));
    const int64_t ticks = j.at("ticks").get<int64_t>();
    SN_CHECK(ticks >= 0 && (kind != "onecycle" || ticks <= total_),
             "{}: the saved schedule is at tick {}, outside its {} ticks", source, ticks, total_);
    ticks_ = ticks;
    lr_ = number_from(j.at("lr"), source);
    momentum_ = number_from(j.at("momentum"), source);
    best_ = number_from(j.at("best"), source);
    bad_epochs_ = j.at("bad_epochs").get<int64_t>();
    cooldown_counter_ = j.at("cooldown_counter").get<int64_t>();
  } catch (const json::exception& e) {
    fail("{}: the schedule state is malformed: {}", source, e.what());
  }
}

}  // namespace scratchnet
