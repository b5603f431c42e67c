// golden_model.h — pieces shared by the model and optimiser parity tests: optimisers built
// from a golden file's JSON description, JSON metadata, and the one-line error report.
#pragma once

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scratchnet/io/safetensors.h"
#include "scratchnet/optim/adam.h"
#include "scratchnet/optim/sgd.h"
#include "support/golden.h"

namespace scratchnet::testing {

// A metadata value that holds JSON (tools/golden_models.py writes lists and dicts so).
inline nlohmann::json golden_meta_json(const SafeTensors& file, const std::string& key,
                                       const std::string& path) {
  return nlohmann::json::parse(golden_meta(file, key, path));
}

// The optimiser a golden file describes, e.g. {"name": "sgd", "lr": 0.1, "momentum": 0.9,
// "dampening": 0, "weight_decay": 0, "nesterov": false}; every field of the options is
// present. `groups` are handed over as they are.
inline std::unique_ptr<Optimizer> optimizer_from_json(const nlohmann::json& o,
                                                      std::vector<ParamGroup> groups) {
  const std::string name = o.at("name");
  auto f = [&](const char* key) { return o.at(key).get<float>(); };
  if (name == "sgd") {
    return std::make_unique<Sgd>(std::move(groups), SgdOptions{.lr = f("lr"),
                                                               .momentum = f("momentum"),
                                                               .dampening = f("dampening"),
                                                               .weight_decay = f("weight_decay"),
                                                               .nesterov = o.at("nesterov")});
  }
  if (name == "adam") {
    return std::make_unique<Adam>(std::move(groups),
                                  AdamOptions{.lr = f("lr"),
                                              .beta1 = f("beta1"),
                                              .beta2 = f("beta2"),
                                              .eps = f("eps"),
                                              .weight_decay = f("weight_decay")});
  }
  if (name == "adamw") {
    return std::make_unique<AdamW>(std::move(groups),
                                   AdamWOptions{.lr = f("lr"),
                                                .beta1 = f("beta1"),
                                                .beta2 = f("beta2"),
                                                .eps = f("eps"),
                                                .weight_decay = f("weight_decay")});
  }
  throw std::runtime_error("golden file names an unknown optimiser \"" + name + "\"");
}

// One line per check, so the errors can be read off a test run:
//   [ rel err  ] bn grad 8.weight            2.1e-06  (tol 1e-04)
inline void report_rel_err(const std::string& what, double rel_err, double tol) {
  std::printf("[ rel err  ] %-40s %.1e  (tol %.0e)%s\n", what.c_str(), rel_err, tol,
              rel_err <= tol ? "" : "  FAILED");
  std::fflush(stdout);
}

}  // namespace scratchnet::testing
