#include "scratchnet/train/tune.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "scratchnet/check.h"
#include "scratchnet/rng.h"

namespace scratchnet {

using json = nlohmann::json;

namespace {

enum class Kind { kLogNumber, kNumber, kInteger, kName };

Kind kind_of(const std::string& name) {
  if (name == "lr" || name == "weight_decay" || name == "l1") return Kind::kLogNumber;
  if (name == "label_smoothing") return Kind::kNumber;
  if (name == "batch_size" || name == "epochs") return Kind::kInteger;
  if (name == "optimizer") return Kind::kName;
  fail("unknown search parameter '{}' (known: {})", name, fmt::join(search_param_names(), ", "));
}

// The whole of `text` as a number, or an error naming it.
double number(const std::string& text) {
  size_t used = 0;
  double v = NAN;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  SN_CHECK(!text.empty() && used == text.size() && std::isfinite(v), "'{}' is not a number", text);
  return v;
}

// Sets one field of `r` from its text.
void set_field(Recipe& r, const std::string& name, const std::string& value) {
  if (name == "optimizer") {
    r.optimizer = value;
    if (value != "sgd") {
      r.momentum = 0;
      r.nesterov = false;
    }
    return;
  }
  const double v = number(value);
  if (kind_of(name) == Kind::kInteger) {
    SN_CHECK(v == std::floor(v) && std::abs(v) < 1e15, "'{}' is not an integer", value);
    (name == "epochs" ? r.epochs : r.batch_size) = static_cast<int64_t>(v);
  } else {
    float& field = name == "lr"             ? r.lr
                   : name == "weight_decay" ? r.weight_decay
                   : name == "l1"           ? r.l1
                                            : r.label_smoothing;
    field = static_cast<float>(v);
  }
}

// Whether the value is one the parameter may take: the recipe's own check on it alone.
void check_value(const std::string& name, const std::string& value) {
  Recipe r;
  r.optimizer = "sgd";
  set_field(r, name, value);
  check_recipe(r);
}

}  // namespace

std::vector<std::string> search_param_names() {
  return {"lr", "weight_decay", "l1", "label_smoothing", "batch_size", "epochs", "optimizer"};
}

SearchParam parse_search_param(const std::string& name, const std::string& text) {
  const Kind kind = kind_of(name);
  SearchParam p{.name = name};
  if (const size_t colon = text.find(':'); colon != std::string::npos) {
    SN_CHECK(kind == Kind::kLogNumber || kind == Kind::kNumber,
             "'{}' is a range, but {} takes a list of values (A,B,...)", text, name);
    p.low = number(text.substr(0, colon));
    p.high = number(text.substr(colon + 1));
    SN_CHECK(p.low < p.high, "range {} needs LO < HI", text);
    SN_CHECK(kind != Kind::kLogNumber || p.low > 0,
             "range {} is sampled log-uniformly and needs LO > 0", text);
    for (double end : {p.low, p.high}) check_value(name, fmt::format("{}", end));
    return p;
  }
  size_t start = 0;
  while (true) {
    const size_t end = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, end - start);
    SN_CHECK(!item.empty(), "empty value in '{}'", text);
    check_value(name, item);
    SN_CHECK(std::find(p.values.begin(), p.values.end(), item) == p.values.end(),
             "{} is listed twice in '{}'", item, text);
    p.values.push_back(std::move(item));
    if (end == text.size()) return p;
    start = end + 1;
  }
}

std::string Trial::describe() const {
  std::string s;
  for (const auto& [name, value] : params)
    s += fmt::format("{}{} {}", s.empty() ? "" : ", ", name, value);
  return s.empty() ? "the base recipe" : s;
}

std::vector<Trial> grid_trials(const SearchSpace& space) {
  size_t total = 1;
  for (const SearchParam& p : space) {
    SN_CHECK(!p.is_range(), "{} {}:{} is a range: ranges need random search", p.name, p.low,
             p.high);
    total *= p.values.size();
  }
  std::vector<Trial> trials(total);
  for (size_t t = 0; t < total; ++t) {
    size_t rest = t;  // mixed-radix digits, the last parameter fastest
    std::vector<std::pair<std::string, std::string>> params(space.size());
    for (size_t i = space.size(); i-- > 0;) {
      const std::vector<std::string>& values = space[i].values;
      params[i] = {space[i].name, values[rest % values.size()]};
      rest /= values.size();
    }
    trials[t].params = std::move(params);
  }
  return trials;
}

std::vector<Trial> random_trials(const SearchSpace& space, int64_t count, uint64_t seed) {
  SN_CHECK(count >= 1, "random search needs at least 1 trial, got {}", count);
  Rng rng(seed);
  std::vector<Trial> trials(static_cast<size_t>(count));
  for (Trial& trial : trials)
    for (const SearchParam& p : space) {
      std::string value;
      if (!p.is_range()) {
        value = p.values[rng.below(p.values.size())];
      } else {
        const double u = rng.uniform();
        const double v = kind_of(p.name) == Kind::kLogNumber
                             ? std::exp(std::log(p.low) + u * (std::log(p.high) - std::log(p.low)))
                             : p.low + u * (p.high - p.low);
        value = fmt::format("{:.4g}", v);
      }
      trial.params.emplace_back(p.name, value);
    }
  return trials;
}

Recipe apply_trial(Recipe base, const Trial& trial) {
  for (const auto& [name, value] : trial.params) set_field(base, name, value);
  check_recipe(base);
  return base;
}

std::string TrialResult::to_json() const {
  json params = json::object();
  for (const auto& [name, value] : trial.params)
    params[name] = kind_of(name) == Kind::kName      ? json(value)
                   : kind_of(name) == Kind::kInteger ? json(static_cast<int64_t>(number(value)))
                                                     : json(number(value));
  return json{{"trial", index + 1},
              {"params", params},
              {"val_accuracy", val_accuracy},
              {"val_loss", val_loss},
              {"epochs", static_cast<int64_t>(history.size())},
              {"seconds", seconds}}
      .dump();
}

std::vector<TrialResult> run_search(
    const std::vector<Trial>& trials, const Recipe& base,
    const std::function<Sequential(const Recipe&)>& make_model, const Dataset& train,
    const SearchBudget& budget,
    const std::function<void(const TrialResult&, Sequential&)>& on_trial) {
  SN_CHECK(base.validation > 0,
           "a search ranks trials on a validation set: the recipe's validation fraction must be "
           "positive, got {}",
           base.validation);
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::vector<TrialResult> results;
  int64_t epochs = 0;
  for (size_t t = 0; t < trials.size(); ++t) {
    if ((budget.seconds > 0 && elapsed() >= budget.seconds) ||
        (budget.epochs > 0 && epochs >= budget.epochs))
      break;
    const double trial_start = elapsed();
    TrialResult r{.index = static_cast<int64_t>(t),
                  .trial = trials[t],
                  .recipe = apply_trial(base, trials[t])};
    Sequential model = make_model(r.recipe);
    Trainer trainer(model, train, nullptr, r.recipe);
    trainer.fit();
    r.history = trainer.history();
    r.val_loss = r.history.back().val_loss;
    r.val_accuracy = r.history.back().val_accuracy;
    r.seconds = elapsed() - trial_start;
    epochs += trainer.epochs_done();
    if (on_trial) on_trial(r, model);
    results.push_back(std::move(r));
  }
  return results;
}

bool ranks_before(const TrialResult& a, const TrialResult& b) {
  // NaN (a diverged or empty validation) ranks last.
  const double acc_a = std::isnan(a.val_accuracy) ? -1 : a.val_accuracy;
  const double acc_b = std::isnan(b.val_accuracy) ? -1 : b.val_accuracy;
  if (acc_a != acc_b) return acc_a > acc_b;
  const double loss_a = std::isnan(a.val_loss) ? INFINITY : a.val_loss;
  const double loss_b = std::isnan(b.val_loss) ? INFINITY : b.val_loss;
  if (loss_a != loss_b) return loss_a < loss_b;
  return a.index < b.index;
}

std::vector<size_t> rank_trials(const std::vector<TrialResult>& results) {
  std::vector<size_t> order(results.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return ranks_before(results[a], results[b]); });
  return order;
}

}  // namespace scratchnet
