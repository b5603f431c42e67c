#include "scratchnet/train/recipe.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "scratchnet/check.h"
#include "scratchnet/optim/adam.h"
#include "scratchnet/optim/sgd.h"

namespace scratchnet {

using json = nlohmann::json;

namespace {

// Floats as the shortest decimal that reads back as them (0.1f -> 0.1 in the JSON).
double decimal(float x) { return std::stod(fmt::format("{}", x)); }

json parse_object(const std::string& text, const std::string& source, const char* what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string why = e.what();  // without the "[json.exception.parse_error.101] " prefix
    fail("{}: {} is not valid JSON: {}", source, what, why.substr(why.find(' ') + 1));
  }
  SN_CHECK(j.is_object(), "{}: {} must be a JSON object", source, what);
  return j;
}

// Whether a JSON value may be read as T: integers only for integer fields, non-negative
// ones for unsigned fields, numbers (not booleans) for floats.
template <typename T>
bool fits(const json& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v.is_boolean();
  else if constexpr (std::is_same_v<T, std::string>)
    return v.is_string();
  else if constexpr (std::is_floating_point_v<T>)
    return v.is_number();
  else if constexpr (std::is_unsigned_v<T>)
    return v.is_number_unsigned();
  else
    return v.is_number_integer();
}

template <typename T>
void read(const json& j, const char* key, T& out, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end()) return;
  SN_CHECK(fits<T>(*it), "{}: field '{}' has the wrong type: {}", source, key, it->dump());
  out = it->get<T>();
}

void check_keys(const json& j, std::initializer_list<const char*> known,
                const std::string& source) {
  for (const auto& [key, value] : j.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    SN_CHECK(ok, "{}: unknown field '{}'", source, key);
  }
}

}  // namespace

void check_recipe(const Recipe& r) {
  SN_CHECK(r.optimizer == "sgd" || r.optimizer == "adam" || r.optimizer == "adamw",
           "optimizer must be sgd, adam or adamw, got '{}'", r.optimizer);
  SN_CHECK(r.lr > 0 && std::isfinite(r.lr), "lr must be positive, got {}", r.lr);
  SN_CHECK(r.momentum >= 0 && r.momentum < 1, "momentum must be in [0, 1), got {}", r.momentum);
  SN_CHECK(!r.nesterov || (r.optimizer == "sgd" && r.momentum > 0),
           "nesterov needs the sgd optimizer with momentum > 0");
  SN_CHECK(r.momentum == 0 || r.optimizer == "sgd", "momentum applies only to the sgd optimizer");
  SN_CHECK(r.weight_decay >= 0 && std::isfinite(r.weight_decay),
           "weight decay must be at least 0, got {}", r.weight_decay);
  SN_CHECK(r.batch_size >= 1, "batch size must be at least 1, got {}", r.batch_size);
  SN_CHECK(r.epochs >= 1, "epochs must be at least 1, got {}", r.epochs);
  SN_CHECK(r.label_smoothing >= 0 && r.label_smoothing < 1,
           "label smoothing must be in [0, 1), got {}", r.label_smoothing);
  SN_CHECK(!r.preprocess.normalize || r.preprocess.std > 0,
           "normalisation std must be positive, got {}", r.preprocess.std);
  check_schedule(r.schedule);
  check_finetune(r.finetune);
  check_augment(r.augment);
  SN_CHECK(r.l1 >= 0 && std::isfinite(r.l1), "l1 must be at least 0, got {}", r.l1);
  SN_CHECK(r.validation >= 0 && r.validation < 1, "validation must be in [0, 1), got {}",
           r.validation);
  check_early_stop(r.early_stop);
  SN_CHECK(r.validation > 0 || !r.early_stop.active() || !r.early_stop.monitor.starts_with("val_"),
           "early_stop.monitor is {}, but validation is 0: hold out a validation set or monitor "
           "a test metric",
           r.early_stop.monitor);
  SN_CHECK(
      r.validation > 0 || r.schedule.kind != "plateau" || !r.schedule.monitor.starts_with("val_"),
      "schedule.monitor is {}, but validation is 0: hold out a validation set or monitor "
      "another metric",
      r.schedule.monitor);
}

std::string preprocess_to_json(const Preprocess& p) {
  return json{{"scale", 1.0 / 255.0},
              {"normalize", p.normalize},
              {"mean", decimal(p.mean)},
              {"std", decimal(p.std)}}
      .dump();
}

Preprocess preprocess_from_json(const std::string& text, const std::string& source) {
  json j = parse_object(text, source, "preprocessing");
  check_keys(j, {"scale", "normalize", "mean", "std"}, source);
  double scale = 1.0 / 255.0;
  read(j, "scale", scale, source);
  SN_CHECK(std::abs(scale - 1.0 / 255.0) < 1e-12,
           "{}: pixel scale {} is not supported (expected 1/255)", source, scale);
  Preprocess p;
  read(j, "normalize", p.normalize, source);
  read(j, "mean", p.mean, source);
  read(j, "std", p.std, source);
  SN_CHECK(!p.normalize || p.std > 0, "{}: normalisation std must be positive, got {}", source,
           p.std);
  return p;
}

std::string recipe_to_json(const Recipe& r) {
  json j{{"optimizer", r.optimizer},
         {"lr", decimal(r.lr)},
         {"momentum", decimal(r.momentum)},
         {"nesterov", r.nesterov},
         {"weight_decay", decimal(r.weight_decay)},
         {"batch_size", r.batch_size},
         {"epochs", r.epochs},
         {"seed", r.seed},
         {"init", r.init == Init::kPyTorch ? "pytorch" : "glorot"},
         {"label_smoothing", decimal(r.label_smoothing)},
         {"preprocess", json::parse(preprocess_to_json(r.preprocess))},
         {"schedule", json::parse(schedule_to_json(r.schedule))}};
  if (r.finetune.active()) j["finetune"] = json::parse(finetune_to_json(r.finetune));
  if (r.augment.active()) j["augment"] = json::parse(augment_to_json(r.augment));
  if (r.l1 != 0) j["l1"] = decimal(r.l1);
  if (r.validation != 0) j["validation"] = r.validation;
  if (r.early_stop != EarlyStopOptions{})
    j["early_stop"] = json::parse(early_stop_to_json(r.early_stop));
  return j.dump();
}

Recipe recipe_from_json(const std::string& text, const std::string& source) {
  json j = parse_object(text, source, "recipe");
  check_keys(j,
             {"optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size", "epochs",
              "seed", "init", "label_smoothing", "preprocess", "schedule", "finetune", "augment",
              "l1", "validation", "early_stop"},
             source);
  Recipe r;
  read(j, "optimizer", r.optimizer, source);
  read(j, "lr", r.lr, source);
  read(j, "momentum", r.momentum, source);
  read(j, "nesterov", r.nesterov, source);
  read(j, "weight_decay", r.weight_decay, source);
  read(j, "batch_size", r.batch_size, source);
  read(j, "epochs", r.epochs, source);
  read(j, "seed", r.seed, source);
  read(j, "label_smoothing", r.label_smoothing, source);
  read(j, "l1", r.l1, source);
  read(j, "validation", r.validation, source);
  std::string init = "pytorch";
  read(j, "init", init, source);
  SN_CHECK(init == "pytorch" || init == "glorot", "{}: init must be pytorch or glorot, got '{}'",
           source, init);
  r.init = init == "pytorch" ? Init::kPyTorch : Init::kGlorot;
  if (j.contains("preprocess")) r.preprocess = preprocess_from_json(j["preprocess"].dump(), source);
  if (j.contains("schedule")) r.schedule = schedule_from_json(j["schedule"].dump(), source);
  if (j.contains("finetune")) r.finetune = finetune_from_json(j["finetune"].dump(), source);
  if (j.contains("augment")) r.augment = augment_from_json(j["augment"].dump(), source);
  if (j.contains("early_stop")) r.early_stop = early_stop_from_json(j["early_stop"].dump(), source);
  try {
    check_recipe(r);
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
  return r;
}

std::unique_ptr<Optimizer> make_optimizer(const Recipe& r, std::vector<NamedParameter> params) {
  return make_optimizer(r, std::vector<ParamGroup>{{.params = std::move(params)}});
}

std::unique_ptr<Optimizer> make_optimizer(const Recipe& r, std::vector<ParamGroup> groups) {
  check_recipe(r);
  if (r.optimizer == "sgd")
    return std::make_unique<Sgd>(std::move(groups), SgdOptions{.lr = r.lr,
                                                               .momentum = r.momentum,
                                                               .weight_decay = r.weight_decay,
                                                               .nesterov = r.nesterov});
  if (r.optimizer == "adam")
    return std::make_unique<Adam>(std::move(groups),
                                  AdamOptions{.lr = r.lr, .weight_decay = r.weight_decay});
  return std::make_unique<AdamW>(std::move(groups),
                                 AdamWOptions{.lr = r.lr, .weight_decay = r.weight_decay});
}

}  // namespace scratchnet
