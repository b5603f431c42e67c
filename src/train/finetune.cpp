#include "scratchnet/train/finetune.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "scratchnet/check.h"
#include "scratchnet/layers/batch_norm.h"
#include "scratchnet/layers/linear.h"

namespace scratchnet {

using json = nlohmann::json;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A non-negative decimal index, or nullopt.
std::optional<size_t> parse_index(const std::string& s) {
  if (s.empty() || s.size() > 9 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return static_cast<size_t>(std::stoul(s));
}

bool has_params(Sequential& model, size_t i) { return !model.layer(i).params().empty(); }

// A block starts at a layer with parameters that is not a BatchNorm (a Conv2d, a Linear) and
// runs to the next such layer: a convolution with its BatchNorm, activation and pooling.
bool starts_block(Sequential& model, size_t i) {
  return has_params(model, i) && dynamic_cast<BatchNorm*>(&model.layer(i)) == nullptr;
}

// Indices [0, end).
std::vector<size_t> first(size_t end) {
  std::vector<size_t> all(end);
  for (size_t i = 0; i < end; ++i) all[i] = i;
  return all;
}

std::vector<size_t> select_one(Sequential& model, const std::string& selector) {
  const size_t n = model.size();
  auto fail_with = [&](const std::string& why) {
    fail(
        "freeze '{}': {}; give a layer index (0-{}), a range A-B, a layer kind such as Conv2d, "
        "features or backbone",
        selector, why, n - 1);
  };
  if (auto i = parse_index(selector)) {
    if (*i >= n) fail_with(fmt::format("the model has no layer {}", *i));
    return {*i};
  }
  if (size_t dash = selector.find('-'); dash != std::string::npos) {
    auto a = parse_index(selector.substr(0, dash)), b = parse_index(selector.substr(dash + 1));
    if (!a || !b) fail_with("not a range of layer indices");
    if (*a > *b) fail_with("the range's first layer comes after its last");
    if (*b >= n) fail_with(fmt::format("the model has no layer {}", *b));
    std::vector<size_t> range;
    for (size_t i = *a; i <= *b; ++i) range.push_back(i);
    return range;
  }
  const std::string name = lower(selector);
  if (name == "backbone") return first(head_index(model));
  if (name == "features") {
    for (size_t i = 0; i < n; ++i)
      if (model.layer(i).kind() == "Flatten") return first(i);
    fail_with("the model has no Flatten layer to end its features");
  }
  std::vector<size_t> kind;
  for (size_t i = 0; i < n; ++i)
    if (lower(model.layer(i).kind()) == name) kind.push_back(i);
  if (kind.empty()) fail_with("no layer is of that kind or group");
  return kind;
}

}  // namespace

void check_finetune(const FinetuneOptions& o) {
  SN_CHECK(!o.backbone_lr || (*o.backbone_lr > 0 && std::isfinite(*o.backbone_lr)),
           "finetune.backbone_lr must be positive, got {}", o.backbone_lr.value_or(0));
  SN_CHECK(o.unfreeze_every >= 0, "finetune.unfreeze_every must be at least 0, got {}",
           o.unfreeze_every);
  SN_CHECK(o.unfreeze_every == 0 || !o.freeze.empty(),
           "finetune.unfreeze_every needs frozen layers (finetune.freeze)");
  for (const std::string& s : o.freeze)
    SN_CHECK(!s.empty(), "finetune.freeze: a selector is empty");
}

std::string finetune_to_json(const FinetuneOptions& o) {
  return json{{"freeze", o.freeze},
              {"backbone_lr",
               o.backbone_lr ? json(std::stod(fmt::format("{}", *o.backbone_lr))) : json(nullptr)},
              {"unfreeze_every", o.unfreeze_every}}
      .dump();
}

FinetuneOptions finetune_from_json(const std::string& text, const std::string& source) {
  FinetuneOptions o;
  try {
    json j = json::parse(text);
    SN_CHECK(j.is_object(), "{}: finetune must be a JSON object", source);
    for (const auto& [key, value] : j.items()) {
      if (key == "freeze") {
        SN_CHECK(value.is_array(), "{}: finetune.freeze must be a list of selectors", source);
        for (const json& s : value) {
          SN_CHECK(s.is_string(), "{}: finetune.freeze must hold strings, got {}", source,
                   s.dump());
          o.freeze.push_back(s.get<std::string>());
        }
      } else if (key == "backbone_lr") {
        SN_CHECK(value.is_null() || value.is_number(),
                 "{}: finetune.backbone_lr must be a number or null, got {}", source, value.dump());
        if (value.is_number()) o.backbone_lr = value.get<float>();
      } else if (key == "unfreeze_every") {
        SN_CHECK(value.is_number_integer(),
                 "{}: finetune.unfreeze_every must be an integer, got {}", source, value.dump());
        o.unfreeze_every = value.get<int64_t>();
      } else {
        fail("{}: unknown field 'finetune.{}'", source, key);
      }
    }
  } catch (const json::exception& e) {
    fail("{}: finetune is not valid JSON: {}", source, e.what());
  }
  try {
    check_finetune(o);
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
  return o;
}

size_t head_index(const Sequential& model) {
  for (size_t i = model.size(); i-- > 0;)
    if (model.layer(i).kind() == "Linear") return i;
  fail("the model has no Linear layer to serve as its classifier head{}",
       model.size() > 0 && model.layer(model.size() - 1).kind() == "LinearInt8"
           ? " (an int8 model cannot be trained: fine-tune the float model it came from)"
           : "");
}

void replace_head(Sequential& model, int64_t classes, Init init, uint64_t seed) {
  SN_CHECK(classes >= 1, "the new head needs at least 1 class, got {}", classes);
  const size_t i = head_index(model);
  const LinearOptions& old = dynamic_cast<const Linear&>(model.layer(i)).options();
  auto head = std::make_unique<Linear>(
      LinearOptions{.in_features = old.in_features, .out_features = classes, .bias = old.bias});
  Rng rng(seed);
  head->init(init, rng);
  const Shape input = model.input_shape();
  model.replace(i, std::move(head));
  model.build(input);
}

std::vector<size_t> select_layers(Sequential& model, const std::vector<std::string>& selectors) {
  std::vector<size_t> chosen;
  for (const std::string& s : selectors) {
    std::vector<size_t> more = select_one(model, s);
    chosen.insert(chosen.end(), more.begin(), more.end());
  }
  std::sort(chosen.begin(), chosen.end());
  chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  bool trains = false;
  for (size_t i = 0; i < model.size(); ++i)
    trains =
        trains || (has_params(model, i) && !std::binary_search(chosen.begin(), chosen.end(), i));
  SN_CHECK(selectors.empty() || trains,
           "freeze {}: every layer with parameters would be frozen, so nothing would train",
           fmt::join(selectors, ","));
  return chosen;
}

std::vector<size_t> frozen_layers(Sequential& model, const FinetuneOptions& options,
                                  int64_t epoch) {
  std::vector<size_t> frozen = select_layers(model, options.freeze);
  if (options.unfreeze_every <= 0) return frozen;
  for (int64_t k = epoch / options.unfreeze_every; k > 0; --k) {
    // The block of the frozen layer with parameters nearest the head, and what is above it.
    auto it = std::find_if(frozen.rbegin(), frozen.rend(),
                           [&](size_t i) { return has_params(model, i); });
    if (it == frozen.rend()) break;
    size_t start = *it;
    while (start > 0 && !starts_block(model, start)) --start;
    frozen.erase(std::lower_bound(frozen.begin(), frozen.end(), start), frozen.end());
  }
  return frozen;
}

void apply_freeze(Sequential& model, const std::vector<size_t>& frozen) {
  for (size_t i = 0; i < model.size(); ++i) {
    const bool fixed = std::binary_search(frozen.begin(), frozen.end(), i);
    for (auto& p : model.layer(i).params()) p.param->trainable = !fixed;
    if (auto* bn = dynamic_cast<BatchNorm*>(&model.layer(i))) bn->freeze_statistics(fixed);
  }
}

}  // namespace scratchnet
