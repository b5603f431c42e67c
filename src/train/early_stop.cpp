#include "scratchnet/train/early_stop.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "scratchnet/check.h"

namespace scratchnet {

using json = nlohmann::json;

void check_early_stop(const EarlyStopOptions& o) {
  SN_CHECK(o.patience >= 0, "early_stop.patience must be at least 0, got {}", o.patience);
  SN_CHECK(o.monitor == "val_loss" || o.monitor == "val_accuracy" || o.monitor == "test_loss" ||
               o.monitor == "test_accuracy",
           "early_stop.monitor must be val_loss, val_accuracy, test_loss or test_accuracy, got "
           "'{}'",
           o.monitor);
  SN_CHECK(o.min_delta >= 0 && std::isfinite(o.min_delta),
           "early_stop.min_delta must be at least 0, got {}", o.min_delta);
}

std::string early_stop_to_json(const EarlyStopOptions& o) {
  return json{{"patience", o.patience}, {"monitor", o.monitor}, {"min_delta", o.min_delta}}.dump();
}

EarlyStopOptions early_stop_from_json(const std::string& text, const std::string& source) {
  EarlyStopOptions o;
  try {
    json j = json::parse(text);
    SN_CHECK(j.is_object(), "{}: early_stop must be a JSON object", source);
    for (const auto& [key, value] : j.items()) {
      if (key == "patience") {
        SN_CHECK(value.is_number_integer(), "{}: early_stop.patience must be an integer, got {}",
                 source, value.dump());
        o.patience = value.get<int64_t>();
      } else if (key == "monitor") {
        SN_CHECK(value.is_string(), "{}: early_stop.monitor must be a string, got {}", source,
                 value.dump());
        o.monitor = value.get<std::string>();
      } else if (key == "min_delta") {
        SN_CHECK(value.is_number(), "{}: early_stop.min_delta must be a number, got {}", source,
                 value.dump());
        o.min_delta = value.get<double>();
      } else {
        fail("{}: unknown field 'early_stop.{}'", source, key);
      }
    }
  } catch (const json::exception& e) {
    fail("{}: early_stop is not valid JSON: {}", source, e.what());
  }
  try {
    check_early_stop(o);
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
  return o;
}

EarlyStopping::EarlyStopping(const EarlyStopOptions& options)
    : options_(options), maximize_(options.monitor.ends_with("accuracy")), best_(NAN) {
  check_early_stop(options_);
}

bool EarlyStopping::update(int64_t epoch, double value) {
  const bool improved = std::isfinite(value) &&
                        (best_epoch_ == 0 || (maximize_ ? value > best_ + options_.min_delta
                                                        : value < best_ - options_.min_delta));
  if (improved) {
    best_ = value;
    best_epoch_ = epoch;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  return improved;
}

std::string EarlyStopping::state_to_json() const {
  return json{{"best_epoch", best_epoch_},
              {"best", std::isnan(best_) ? json(nullptr) : json(best_)},
              {"bad_epochs", bad_epochs_}}
      .dump();
}

void EarlyStopping::load_state(const std::string& text, const std::string& source) {
  try {
    json j = json::parse(text);
    best_epoch_ = j.at("best_epoch").get<int64_t>();
    best_ = j.at("best").is_null() ? NAN : j.at("best").get<double>();
    bad_epochs_ = j.at("bad_epochs").get<int64_t>();
  } catch (const json::exception& e) {
    fail("{}: the early-stopping state is malformed: {}", source, e.what());
  }
  SN_CHECK(best_epoch_ >= 0 && bad_epochs_ >= 0 && (best_epoch_ == 0) == std::isnan(best_),
           "{}: the early-stopping state is inconsistent: {}", source, text);
}

}  // namespace scratchnet
